"""The bot's tools across its MCP servers, as the engine's :class:`core.tools.ToolBox`.

Only allowlisted tools of servers that are up are offered. A tool is read-only (runs without asking) when
the bot lists it in ``read_only``, or the server marks it ``readOnlyHint`` and not ``destructiveHint``, and
the bot does not list it in ``confirm``. Two servers offering the same tool name: the first listed wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mcp.types as mcp_types

from core.tools import ToolFailed, ToolOutcome, ToolSpec
from features.tools.config import MCPServerConfig
from features.tools.mcp_link import ServerLink


class MCPToolBox:
    """The tools of several :class:`ServerLink`, looked up by name."""

    def __init__(self, links: Sequence[ServerLink]) -> None:
        self.links = list(links)

    def specs(self) -> list[ToolSpec]:
        found: dict[str, ToolSpec] = {}
        for link in self.links:
            for tool in list(link.tools.values()):
                if tool.name not in found:
                    found[tool.name] = spec_of(tool, link.config)
        return list(found.values())

    async def call(self, name: str, arguments: dict[str, Any], *, seconds: float) -> ToolOutcome:
        for link in self.links:
            if name in link.tools:
                return await link.call(name, arguments, seconds)
        for link in self.links:
            if link.config.allows(name) and not link.up:
                raise ToolFailed(f"the {link.name} tool server is not reachable right now")
        raise ToolFailed(f"there is no tool named {name!r}")


def spec_of(tool: mcp_types.Tool, config: MCPServerConfig) -> ToolSpec:
    """What the model is offered of an MCP tool, and whether it may run without asking."""
    notes = tool.annotations
    marked_read_only = bool(notes and notes.read_only_hint and not notes.destructive_hint)
    read_only = tool.name not in config.confirm and (tool.name in config.read_only or marked_read_only)
    title = tool.title or (notes.title if notes and notes.title else "")
    schema = dict(tool.input_schema) if tool.input_schema else {"type": "object", "properties": {}}
    return ToolSpec(
        name=tool.name,
        description=tool.description or "",
        parameters=schema,
        read_only=read_only,
        title=title or "",
    )
