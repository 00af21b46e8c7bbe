"""Dependencies point one way: bots -> adapters and features -> core. Nothing runs at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = {"telegram", "slack_bolt", "slack_sdk", "discord", "aiohttp"}


def imports_of(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_core_imports_no_adapter_feature_bot_or_platform_sdk() -> None:
    for path, names in imports_of("core").items():
        wrong = names & ({"adapters", "features", "bots"} | PLATFORM_SDKS)
        assert not wrong, f"{path} imports {wrong}"


def test_adapters_never_import_bots_or_features() -> None:
    for path, names in imports_of("adapters").items():
        assert not names & {"bots", "features"}, path


def test_features_import_only_core_and_no_platform_sdk() -> None:
    for path, names in imports_of("features").items():
        wrong = names & ({"adapters", "bots"} | (PLATFORM_SDKS - {"aiohttp"}))  # metrics serves HTTP
        assert not wrong, f"{path} imports {wrong}"


def test_importing_everything_starts_nothing() -> None:
    code = "import core.conversation, core.streaming, bots.cli, bots.app, adapters.terminal; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.stdout.strip() == "ok" and result.stderr == ""
