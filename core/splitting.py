"""Where a long reply is cut into platform-sized messages.

The cut goes at the cleanest boundary that fits: a paragraph break, then a line break, then the end of a
sentence, then a space, and only as a last resort mid-word. A cut that would fall inside a fenced code
block moves before the block when there is enough text before it; otherwise the block is closed at the
end of the first part and reopened (with its language) at the start of the next, so both render as code.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Measure = Callable[[str], int]

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?。！？…][\"')\]]*\s")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the way Telegram counts message length."""
    return len(text.encode("utf-16-le")) // 2


def fitting_prefix(text: str, limit: int, measure: Measure = len) -> int:
    """The largest ``n`` such that ``measure(text[:n]) <= limit``."""
    if limit <= 0:
        return 0
    if measure is len:
        return min(len(text), limit)
    if measure(text) <= limit:
        return len(text)
    lo, hi = 0, min(len(text), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _clean_cut(text: str, fit: int) -> int:
    """Best cut position in ``text[:fit]``; the head is ``text[:cut]``."""
    window = text[:fit]
    floor = fit // 2
    for sep in ("\n\n", "\n"):
        idx = window.rfind(sep)
        if idx >= floor:
            return idx
    last = None
    for match in _SENTENCE_END.finditer(window):
        last = match
    if last is not None and last.end() >= floor:
        return last.end()
    idx = window.rfind(" ")
    if idx >= fit // 4:
        return idx
    return fit


def _open_fence(text: str, pos: int) -> re.Match[str] | None:
    """The opening fence line of the code block that ``pos`` falls inside, if any."""
    opener: re.Match[str] | None = None
    for match in _FENCE.finditer(text, 0, pos):
        if match.end() > pos:
            break
        opener = match if opener is None else None
    return opener


def split_text(text: str, limit: int, measure: Measure = len) -> tuple[str, str]:
    """Split ``text`` into a head that fits ``limit`` and the tail that follows it.

    Returns ``(text, "")`` when it already fits. The head is never empty when ``text`` is not, so
    repeated splitting always makes progress.
    """
    if measure(text) <= limit:
        return text, ""
    fit = max(1, fitting_prefix(text, limit, measure))
    cut = _clean_cut(text, fit)
    fence = _open_fence(text, cut)
    if fence is not None:
        if fence.start() >= fit // 4:
            cut = fence.start()
        else:
            return _split_inside_code(text, limit, measure, fence)
    head, tail = text[:cut].rstrip(), text[cut:].lstrip()
    if not head:
        head, tail = text[:fit], text[fit:]
    return head, tail


def _split_inside_code(text: str, limit: int, measure: Measure, fence: re.Match[str]) -> tuple[str, str]:
    marker = fence.group(1)
    closing = "\n" + marker
    fit = max(1, fitting_prefix(text, limit - measure(closing), measure))
    body_start = fence.end() + 1
    newline = text.rfind("\n", body_start, fit)
    if fit <= body_start:
        return text[:fit], text[fit:]
    cut = newline if newline > body_start else fit
    head = text[:cut].rstrip("\n") + closing
    reopen = fence.group(0).strip() + "\n"
    tail = reopen + text[cut:].lstrip("\n")
    return head, tail
