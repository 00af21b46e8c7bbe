"""How a bot names its MCP servers and tools: pydantic models a bot definition (or a file) embeds as is.

    servers:
      - name: clock
        command: uvx
        args: [mcp-server-time]
        tools: [get_current_time, convert_time]      # the allowlist; ["*"] allows every tool
      - name: tickets
        transport: http
        url: http://127.0.0.1:9000/mcp
        headers: {Authorization: "Bearer ${TICKETS_TOKEN}"}
        tools: [find_ticket, create_ticket]
        read_only: [find_ticket]                    # run without asking, whatever the server says
    limits: {max_steps: 5, tool_seconds: 30, total_seconds: 120, max_tokens: 60000}

A tool runs without asking only when it is read-only: the server marks it so (MCP ``ToolAnnotations``
``readOnlyHint: true`` and not ``destructiveHint``) or the bot lists it in ``read_only``; every other tool
asks the user first, and so does every tool in ``confirm``. ``${NAME}`` in ``env``, ``headers`` and ``url``
is read from the environment when the server starts, so tokens stay out of bot files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError
from core.tools import ToolLimits

_NAME = r"^[A-Za-z0-9_-]{1,40}$"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MCPServerConfig(BaseModel):
    """One MCP server a bot uses, over stdio (a command) or streamable HTTP (a URL)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    transport: Literal["stdio", "http"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    tools: list[str] = Field(min_length=1)
    read_only: list[str] = Field(default_factory=list)
    confirm: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _transport_needs(self) -> MCPServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError(f"MCP server {self.name!r}: a stdio server needs a command")
        if self.transport == "http" and not self.url:
            raise ValueError(f"MCP server {self.name!r}: an http server needs a url")
        return self

    def allows(self, tool: str) -> bool:
        return "*" in self.tools or tool in self.tools

    def resolved_env(self) -> dict[str, str]:
        return {key: expand(value) for key, value in self.env.items()}

    def resolved_headers(self) -> dict[str, str]:
        return {key: expand(value).strip() for key, value in self.headers.items()}


class ToolLimitsConfig(BaseModel):
    """Per-turn limits on tool use (see :class:`core.tools.ToolLimits`)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=5, ge=1, le=50)
    tool_seconds: float = Field(default=30.0, gt=0)
    total_seconds: float = Field(default=120.0, gt=0)
    max_tokens: int = Field(default=60_000, ge=0)
    result_tokens: int = Field(default=2_000, ge=64)
    confirm_seconds: float = Field(default=120.0, gt=0)

    def to_limits(self) -> ToolLimits:
        return ToolLimits(**self.model_dump())


class ToolsConfig(BaseModel):
    """A bot's tools: its MCP servers and the per-turn limits."""

    model_config = ConfigDict(extra="forbid")

    servers: list[MCPServerConfig] = Field(default_factory=list)
    limits: ToolLimitsConfig = Field(default_factory=ToolLimitsConfig)
    start_seconds: float = Field(default=10.0, gt=0)  # how long the bot waits for servers at start

    @model_validator(mode="after")
    def _unique_names(self) -> ToolsConfig:
        names = [server.name for server in self.servers]
        if len(names) != len(set(names)):
            raise ValueError("MCP server names must be unique")
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any] | ToolsConfig, source: str) -> ToolsConfig:
        """The config from plain data (or a :class:`ToolsConfig` already), or a :class:`ConfigError`
        naming ``source`` and the bad field."""
        if isinstance(data, ToolsConfig):
            return data
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "top level"
            raise ConfigError(f"{source}: {where}: {first['msg']}") from None

    @classmethod
    def from_file(cls, path: Path) -> ToolsConfig:
        """Read a YAML or JSON tools file."""
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the tools file {path}: {exc}") from None
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the tools file must be a mapping with 'servers'")
        return cls.parse(data, str(path))


def expand(value: str) -> str:
    """``value`` with each ``${NAME}`` replaced by that environment variable (empty when unset)."""
    return _VARIABLE.sub(lambda match: os.environ.get(match.group(1), ""), value)
