"""One MCP server kept connected: started with the bot, restarted with backoff when it dies.

A :class:`ServerLink` runs one supervising task per server. It connects (a stdio subprocess, or streamable
HTTP) through the official ``mcp`` SDK (``ClientSession``, ``stdio_client``, ``streamable_http_client``),
lists the server's tools, and then pings it every ``ping_seconds``. When the server dies (the process
exits, the connection breaks, a ping or a call fails for the connection), its tools disappear at once and
the link reconnects after a pause that doubles up to ``max_backoff`` (with jitter). A server that is down
at start is tried the same way; the bot starts without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import mcp.types as mcp_types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from core.tools import ToolFailed, ToolOutcome
from features.tools.config import MCPServerConfig, expand

log = logging.getLogger(__name__)


class ServerLink:
    """A supervised connection to one MCP server and the tools it offers while it is up."""

    def __init__(
        self,
        config: MCPServerConfig,
        *,
        ping_seconds: float = 15.0,
        first_backoff: float = 0.5,
        max_backoff: float = 60.0,
    ) -> None:
        self.config = config
        self.ping_seconds = ping_seconds
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.tools: dict[str, mcp_types.Tool] = {}  # allowed tools, while the server is up
        self.connects = 0  # successful connections so far (a restart adds one)
        self._session: ClientSession | None = None
        self._broken = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def up(self) -> bool:
        return self._session is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.name}")

    async def wait_up(self, seconds: float) -> bool:
        """Wait until the server is up, at most ``seconds``; whether it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self.up:
                    self._changed.clear()
                    await self._changed.wait()
        return self.up

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def call(self, tool: str, arguments: dict[str, Any], seconds: float) -> ToolOutcome:
        """Run ``tool``; a :class:`ToolFailed` with a plain sentence when it cannot."""
        session = self._session
        if session is None:
            raise ToolFailed(f"the {self.name} tool server is not reachable right now")
        try:
            async with asyncio.timeout(seconds):
                result = await session.call_tool(tool, arguments)
        except TimeoutError:
            raise ToolFailed(f"it did not answer within {seconds:g} seconds") from None
        except MCPError as exc:
            raise ToolFailed(f"the tool refused the call: {str(exc)[:200]}") from None
        except Exception as exc:
            log.warning("%s: a call to %s failed: %r; reconnecting", self.name, tool, exc)
            self._broken.set()
            raise ToolFailed(f"the {self.name} tool server stopped answering") from None
        if not isinstance(result, mcp_types.CallToolResult):
            raise ToolFailed("the tool answered with something other than a result")
        return ToolOutcome(result_text(result), error=bool(result.is_error))

    async def _supervise(self) -> None:
        delay = self.first_backoff
        while True:
            connected = False
            try:
                async with self._connection() as session:
                    await self._take_tools(session)
                    connected = True
                    self.connects += 1
                    log.info("MCP server %s is up with %d allowed tools", self.name, len(self.tools))
                    await self._watch(session)
                log.warning("MCP server %s went away", self.name)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # anyio task groups raise groups; none may end the supervisor
                reason = _reason(exc)
                log.warning("MCP server %s is down (%s); its tools are unavailable", self.name, reason)
            finally:
                self._down()
            if connected:
                delay = self.first_backoff
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.max_backoff)

    def _down(self) -> None:
        self._session = None
        self.tools = {}
        self._changed.set()

    async def _take_tools(self, session: ClientSession) -> None:
        tools: dict[str, mcp_types.Tool] = {}
        cursor: str | None = None
        while True:
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            listed = await session.list_tools(params=params)
            for tool in listed.tools:
                if self.config.allows(tool.name):
                    tools[tool.name] = tool
            cursor = listed.next_cursor
            if not cursor:
                break
        missing = [name for name in self.config.tools if name != "*" and name not in tools]
        if missing:
            log.warning("MCP server %s does not offer %s", self.name, ", ".join(missing))
        self.tools = tools
        self._session = session
        self._broken.clear()
        self._changed.set()

    async def _watch(self, session: ClientSession) -> None:
        """Return when the server stops answering pings or a call found it broken."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ping_seconds):
                    await self._broken.wait()
            if self._broken.is_set():
                return
            try:
                async with asyncio.timeout(max(5.0, self.ping_seconds)):
                    await session.send_ping()
            except Exception as exc:
                log.warning("MCP server %s did not answer a ping: %s", self.name, _reason(exc))
                return

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[ClientSession]:
        async with self._transport() as (read, write), ClientSession(read, write) as session:
            async with asyncio.timeout(30.0):
                await session.initialize()
            yield session

    def _transport(self) -> AbstractAsyncContextManager[Any]:
        config = self.config
        if config.transport == "http":
            client = create_mcp_http_client(headers=config.resolved_headers())
            return _closing_client(
                client, streamable_http_client(expand(config.url or ""), http_client=client)
            )
        parameters = StdioServerParameters(
            command=config.command or "", args=list(config.args), env=config.resolved_env(), cwd=config.cwd
        )
        return _quiet_stdio(parameters)


@asynccontextmanager
async def _quiet_stdio(parameters: StdioServerParameters) -> AsyncIterator[Any]:
    """``stdio_client`` with the server's stderr discarded (it would print over the terminal chat)."""
    with open(os.devnull, "w", encoding="utf-8") as errlog:  # noqa: ASYNC230 (the null device)
        async with stdio_client(parameters, errlog=errlog) as streams:
            yield streams


@asynccontextmanager
async def _closing_client(client: Any, transport: AbstractAsyncContextManager[Any]) -> AsyncIterator[Any]:
    async with client, transport as streams:
        yield streams


def result_text(result: mcp_types.CallToolResult) -> str:
    """A tool result as text for the model: its text parts, else its structured content as JSON."""
    pieces: list[str] = []
    for item in result.content:
        if isinstance(item, mcp_types.TextContent):
            pieces.append(item.text)
        else:
            pieces.append(f"[{getattr(item, 'type', 'content')} not shown]")
    if not any(piece.strip() for piece in pieces) and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(pieces)


def _reason(exc: BaseException) -> str:
    """A short reason for the log, the first leaf of an exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text[:200]
