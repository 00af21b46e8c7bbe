"""Installs a bot's tools: connects its MCP servers (waiting a little for them at start, never failing the
bot for one that is down) and gives the engine a :class:`core.tool_loop.ToolRunner` over them.

Where a bot's tools are named, first found wins: the bot definition's ``tools`` (``BotProfile.tools``,
plain data in the shape of :class:`features.tools.config.ToolsConfig`), ``CHATBOT_TOOLS_FILE``, or
``bots/data/<bot>/tools.yaml`` (or ``tools.json``).
"""

from __future__ import annotations

import asyncio
import logging

from core.tool_loop import ToolRunner
from features import FeatureContext
from features.tools.config import ToolsConfig
from features.tools.mcp_link import ServerLink
from features.tools.toolbox import MCPToolBox

log = logging.getLogger(__name__)

ORDER = 80
TOOLS_FILES = ("tools.yaml", "tools.yml", "tools.json")


def load_config(ctx: FeatureContext) -> ToolsConfig | None:
    """The bot's tools configuration, or ``None`` when it names none."""
    bot = ctx.engine.bot
    if bot.tools is not None:
        return ToolsConfig.parse(bot.tools, f"the tools of bot {bot.name!r}")
    if ctx.settings.tools_file is not None:
        return ToolsConfig.from_file(ctx.settings.tools_file)
    for name in TOOLS_FILES:
        path = ctx.data_dir / name
        if path.is_file():
            return ToolsConfig.from_file(path)
    return None


async def install(ctx: FeatureContext) -> None:
    if not ctx.settings.tools:
        return
    config = load_config(ctx)
    if config is None or not config.servers:
        return
    links = [ServerLink(server) for server in config.servers]
    for link in links:
        link.start()

    async def stop() -> None:
        await asyncio.gather(*(link.stop() for link in links))

    ctx.closers.append(stop)
    up = await asyncio.gather(*(link.wait_up(config.start_seconds) for link in links))
    for link, ready in zip(links, up, strict=True):
        if not ready:
            log.warning("MCP server %s is not up yet; its tools come once it is", link.name)
    ctx.engine.tools = ToolRunner(MCPToolBox(links), config.limits.to_limits(), secrets=ctx.secrets)
