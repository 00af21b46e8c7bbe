"""Tools files for tests: the SDK-written MCP server of ``tests/fakes/mcp_server.py`` over stdio."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FAKE_TOOLS = [
    "get_weather",
    "get_time",
    "fetch_page",
    "big_report",
    "slow_lookup",
    "broken_lookup",
    "create_ticket",
    "read_settings",
]  # every tool of the fake server but ``not_allowed``


def fake_server(name: str = "fake", tmp_path: Path | None = None, **env: str) -> dict[str, Any]:
    """One stdio server entry running the fake MCP server; ``FAKE_MCP_LOG`` goes under ``tmp_path``."""
    values = {"PYTHONPATH": str(ROOT), **env}
    if tmp_path is not None:
        values.setdefault("FAKE_MCP_LOG", str(tmp_path / f"{name}-actions.log"))
    return {
        "name": name,
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_server"],
        "cwd": str(ROOT),
        "env": values,
        "tools": list(FAKE_TOOLS),
    }


def write_tools_file(
    tmp_path: Path,
    servers: list[dict[str, Any]] | None = None,
    *,
    start_seconds: float = 10.0,
    **limits: Any,
) -> Path:
    """A tools file naming ``servers`` (default: one fake server) with ``limits``."""
    path = tmp_path / "tools.json"
    config = {
        "servers": servers if servers is not None else [fake_server(tmp_path=tmp_path)],
        "limits": limits,
        "start_seconds": start_seconds,
    }
    path.write_text(json.dumps(config))
    return path


def stored_replies(db_path: Path) -> list[tuple[str, bool, str]]:
    """Every stored reply as ``(content, complete, tools)``, oldest first."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT content, complete, tools FROM messages WHERE role = 'assistant' ORDER BY id"
        ).fetchall()
    return [(content, bool(complete), tools) for content, complete, tools in rows]


def tool_messages_are_paired(messages: list[dict[str, Any]]) -> bool:
    """Whether every ``tool`` message answers a call of the assistant message before it, and every call
    of an assistant message is answered."""
    open_calls: set[str] = set()
    for message in messages:
        if message["role"] == "tool":
            if message["tool_call_id"] not in open_calls:
                return False
            open_calls.discard(message["tool_call_id"])
            continue
        if open_calls:
            return False
        open_calls = {call["id"] for call in message.get("tool_calls") or []}
    return not open_calls
