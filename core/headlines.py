"""A one-line title made from a text (a thread's name, a conversation's title), within a length limit."""

from __future__ import annotations

ELLIPSIS = "…"


def headline(text: str, limit: int, *, default: str = "") -> str:
    """The first non-blank line of ``text``, spaces collapsed, cut at a word to fit ``limit`` characters
    (with "…" when cut); ``default`` when there is no text."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else default
    if len(line) <= limit:
        return line
    cut = line[: limit - len(ELLIPSIS)].rsplit(" ", 1)[0] or line[: limit - len(ELLIPSIS)]
    return cut.rstrip() + ELLIPSIS
