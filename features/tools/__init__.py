"""Tools: the MCP servers a bot names (stdio or streamable HTTP, with allowlists), kept connected, offered to
the engine's tool loop (:mod:`core.tool_loop`). See docs/tools.md."""
