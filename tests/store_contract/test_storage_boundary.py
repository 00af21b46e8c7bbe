"""Features and bots reach storage only through the interfaces of :mod:`core.store`: no SQL, no database
driver, no second connection, no test of which backend the store is."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "a database driver": re.compile(r"^\s*(import|from)\s+(aiosqlite|sqlite3|asyncpg)\b", re.MULTILINE),
    "SQL run directly": re.compile(r"\.(execute|executemany|executescript|execute_fetchall)\("),
    "the store's connection": re.compile(r"\bstore\.db\b|\.db\.execute"),
    "a test of the backend": re.compile(r"isinstance\([^)]*(SQLite|Postgres)Store"),
    "a connection of its own": re.compile(r"\bconnect\(\s*(Path\()?[\w.]*db_path"),
}


def test_features_and_bots_use_the_store_interfaces_only() -> None:
    found = []
    for package in ("features", "bots"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for what, pattern in FORBIDDEN.items():
                if pattern.search(text):
                    found.append(f"{path.relative_to(ROOT)}: {what}")
    assert found == []
