"""Passages from documents that follow their structure: a chunk never spans two sections, breaks between
paragraphs when it can, between sentences when a paragraph is too long, and between words only when a
sentence is; each is at most ``max_tokens`` long and starts with up to ``overlap`` tokens of the one before,
so an answer that straddles a break is still found whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.tokens import TokenCounter
from features.knowledge.readers import Document

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=\S)")
PARAGRAPH_GAP = "\n\n"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage: where it comes from (file and section), its text and its size in tokens."""

    source: str
    section: str
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    tokens: int
    joiner: str  # what separates it from the piece before: a paragraph gap, a line break or a space


def chunk_document(document: Document, counter: TokenCounter, max_tokens: int, overlap: int) -> list[Chunk]:
    """The document's passages, section by section, in reading order."""
    chunks = []
    for section in document.sections:
        for text in chunk_paragraphs(list(section.paragraphs), counter, max_tokens, overlap):
            chunks.append(Chunk(document.source, section.title, text, counter.count(text)))
    return chunks


def chunk_paragraphs(
    paragraphs: list[str], counter: TokenCounter, max_tokens: int, overlap: int
) -> list[str]:
    """Paragraphs of one section packed into texts of at most ``max_tokens`` with ``overlap``."""
    max_tokens = max(8, max_tokens)
    overlap = max(0, min(overlap, max_tokens // 2))
    pieces = [piece for paragraph in paragraphs for piece in _pieces(paragraph, counter, max_tokens)]
    out: list[str] = []
    current: list[_Piece] = []
    size = 0
    fresh = 0  # pieces in ``current`` that no earlier chunk holds
    for piece in pieces:
        cost = piece.tokens + (1 if current else 0)
        if current and size + cost > max_tokens:
            out.append(_join(current))
            current = _tail(current, counter, overlap, room=max_tokens - piece.tokens - 1)
            size = sum(p.tokens for p in current) + max(0, len(current) - 1)
            cost = piece.tokens + (1 if current else 0)
            fresh = 0
        current.append(piece)
        size += cost
        fresh += 1
    if current and fresh:
        out.append(_join(current))
    return [_fit(text, counter, max_tokens) for text in out]


def _join(pieces: list[_Piece]) -> str:
    return "".join((piece.joiner if index else "") + piece.text for index, piece in enumerate(pieces))


def _fit(text: str, counter: TokenCounter, max_tokens: int) -> str:
    """``text``, shortened by words in the rare case joining pieces made it count over the limit."""
    if counter.count(text) <= max_tokens:
        return text
    words = text.split(" ")
    return " ".join(words[: _prefix_length(words, counter, max_tokens)])


def _pieces(paragraph: str, counter: TokenCounter, max_tokens: int) -> list[_Piece]:
    """A paragraph as one piece or, when longer than a chunk, as lines (list items, table rows), then
    sentences, then runs of words."""
    tokens = counter.count(paragraph)
    if tokens <= max_tokens:
        return [_Piece(paragraph, tokens, PARAGRAPH_GAP)]
    pieces: list[_Piece] = []
    for line in paragraph.split("\n"):
        size = counter.count(line)
        if size <= max_tokens:
            pieces.append(_Piece(line, size, "\n"))
            continue
        for sentence in _SENTENCE_END.split(line):
            size = counter.count(sentence)
            if size <= max_tokens:
                pieces.append(_Piece(sentence, size, " "))
                continue
            words = sentence.split()
            while words:
                n = max(1, _prefix_length(words, counter, max_tokens))
                run = " ".join(words[:n])
                if counter.count(run) > max_tokens:  # one enormous "word" (a URL, base64): cut it
                    run = _cut_chars(run, counter, max_tokens)
                    words[0] = words[0][len(run) :]
                    if not words[0]:
                        words.pop(0)
                else:
                    del words[:n]
                pieces.append(_Piece(run, counter.count(run), " "))
    return [_Piece(pieces[0].text, pieces[0].tokens, PARAGRAPH_GAP), *pieces[1:]] if pieces else []


def _prefix_length(words: list[str], counter: TokenCounter, limit: int, *, from_end: bool = False) -> int:
    """The most leading (or trailing) words whose join counts at most ``limit`` tokens (0 if none do)."""
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        run = words[len(words) - middle :] if from_end else words[:middle]
        if counter.count(" ".join(run)) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def _cut_chars(text: str, counter: TokenCounter, limit: int) -> str:
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if counter.count(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _tail(pieces: list[_Piece], counter: TokenCounter, overlap: int, room: int) -> list[_Piece]:
    """The end of a chunk to repeat at the start of the next: whole pieces if they fit in ``overlap``,
    else the last words of the last piece."""
    budget = min(overlap, room)
    if budget <= 0:
        return []
    kept: list[_Piece] = []
    used = 0
    for piece in reversed(pieces):
        cost = piece.tokens + (1 if kept else 0)
        if used + cost > budget:
            break
        kept.insert(0, piece)
        used += cost
    if kept:
        return kept
    words = pieces[-1].text.split()
    n = _prefix_length(words, counter, budget, from_end=True)
    if n == 0:
        return []
    text = " ".join(words[-n:])
    return [_Piece(text, counter.count(text), " ")]
