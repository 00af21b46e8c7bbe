"""Logging for the bot: a turn log and warnings, with every configured secret redacted and every line capped.

Libraries log request URLs (Telegram's carries the bot token), so redaction is a filter on the handlers
rather than care at each call site. For the same reason the length cap is a filter too: no message a user
sends and no library's error can make one log line longer than ``MAX_LINE_CHARS``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from io import TextIOWrapper
from pathlib import Path

from core.secrets import redact_secrets

REDACTED = "[redacted]"
MAX_LINE_CHARS = 8_000  # of a log record's message, and of its exception text
CUT_LINE = " [… {n:,} more characters not logged]"
NOISY_LOGGERS = (
    "httpx",
    "httpx2",
    "httpcore",
    "openai",
    "aiosqlite",
    "telegram.ext",
    "slack_bolt",
    "discord",
)


class RedactSecrets(logging.Filter):
    """Replaces each secret (and, for tokens with an id prefix, its secret part) in every record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Configured secrets and anything shaped like a key or token (``sk-...``, ``xoxb-...``)."""
        return redact_secrets(text, self.secrets, REDACTED)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def capped(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` whole, or its first ``limit`` characters and a marker saying how many were left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + CUT_LINE.format(n=len(text) - limit)


class CapLength(logging.Filter):
    """Cuts a record's message and exception text to ``limit`` characters each, with a marker."""

    def __init__(self, limit: int = MAX_LINE_CHARS) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > self.limit:
            record.msg, record.args = capped(message, self.limit), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and len(record.exc_text) > self.limit:
            record.exc_text = capped(record.exc_text, self.limit)
        return True


class LazyFileHandler(logging.FileHandler):
    """A file handler that creates its folder and file with the first record it writes, so a command
    that logs nothing (``chatbot bots``, ``chatbot --help``) leaves no files behind."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self) -> TextIOWrapper:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (a turn's message is itself JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == "chatbot.turns":
            try:
                entry["turn"] = json.loads(message)
            except ValueError:
                entry["message"] = message
        else:
            entry["message"] = message
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    *,
    level: str = "INFO",
    log_file: Path | None = None,
    console_level: str = "WARNING",
    secrets: Iterable[str] = (),
    json_lines: bool = False,
) -> None:
    """Send everything from ``level`` up to ``log_file`` and from ``console_level`` up to stderr."""
    redactor = RedactSecrets(secrets)
    cap = CapLength()
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(min(logging.getLevelName(level.upper()), logging.getLevelName(console_level.upper())))
    formatter: logging.Formatter = (
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level.upper())
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    console.addFilter(redactor)
    console.addFilter(cap)
    root.addHandler(console)
    if log_file is not None:
        handler = LazyFileHandler(log_file)
        handler.setLevel(level.upper())
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        handler.addFilter(cap)
        root.addHandler(handler)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
