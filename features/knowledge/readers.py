"""Documents from files: Markdown, plain text, HTML and PDF, as titled sections of paragraphs.

Every reader returns the same shape, a list of :class:`Section` (the heading path and the paragraphs under
it), so chunking follows the document's structure whatever its format:

- Markdown: ``#`` and underlined headings open sections; blank lines separate paragraphs; fenced code stays
  one block; front matter is skipped.
- HTML (stdlib ``html.parser``): ``<h1>``-``<h6>`` open sections; block elements separate paragraphs; list
  items and table rows stay together; scripts, styles and navigation are dropped.
- PDF (pypdf): one section per page (PDFs carry no reliable headings); blank lines separate paragraphs.
- Plain text: one untitled section; blank lines separate paragraphs.

A file that cannot be read raises :class:`UnreadableFile` with a reason fit to show the user.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

log = logging.getLogger(__name__)

KINDS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
TITLE_SEPARATOR = " > "


class UnreadableFile(Exception):
    """A file that could not be turned into text; ``reason`` says why, for the user."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Section:
    """The paragraphs under one heading; ``title`` is the heading path (``Plans > Pro``), "" for none."""

    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Document:
    """One file's text, by section, and the hash of its bytes (to skip it when unchanged)."""

    path: Path
    source: str
    sections: tuple[Section, ...]
    content_hash: str


def kind_of(path: Path) -> str | None:
    """``markdown``, ``text``, ``html`` or ``pdf`` for a supported file name, else ``None``."""
    return KINDS.get(path.suffix.lower())


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_files(root: Path) -> Iterator[Path]:
    """Supported files under ``root`` (recursively, in name order), hidden files and folders skipped.

    ``root`` itself is yielded when it is a file, whatever its type, so the caller can report it."""
    if not root.is_dir():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and kind_of(path) is not None:
                yield path


def read_file(path: Path) -> bytes:
    """The bytes of a file of a supported type (blocking: call it in a thread)."""
    if kind_of(path) is None:
        raise UnreadableFile(path, f"unsupported file type {path.suffix or '(none)'!r}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(path, exc.strerror or type(exc).__name__) from exc


def parse_document(path: Path, source: str, data: bytes) -> Document:
    """A document from a file's bytes, parsed by the file's type."""
    kind = kind_of(path)
    if kind == "pdf":
        sections = parse_pdf(path, data)
    else:
        text = decode_text(path, data)
        if kind == "markdown":
            sections = parse_markdown(text)
        elif kind == "html":
            sections = parse_html(text)
        else:
            sections = parse_text(text)
    if not any(section.paragraphs for section in sections):
        hint = " (a scanned PDF needs OCR first)" if kind == "pdf" else ""
        raise UnreadableFile(path, f"no text found{hint}")
    return Document(path=path, source=source, sections=tuple(sections), content_hash=content_hash(data))


def decode_text(path: Path, data: bytes) -> str:
    """A text file's bytes as text (UTF-8, BOM dropped, newlines normalised); binary data is refused."""
    if b"\x00" in data:
        raise UnreadableFile(path, "binary data, not text")
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(path, f"not UTF-8 text (byte {exc.start})") from exc


def _clean(text: str) -> str:
    """Whitespace runs inside lines collapsed, blank edges removed."""
    lines = (re.sub(r"[ \t\f\v\u00a0]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


_STRUCTURED_LINE = re.compile(r"^(?:[-*+>|]|\d+[.)])\s?")


def _unwrap(text: str) -> str:
    """Prose whose lines were wrapped for the editor as one line; lists, tables and quotes keep theirs."""
    lines = text.split("\n")
    if any(_STRUCTURED_LINE.match(line) for line in lines):
        return text
    return " ".join(lines)


class _Sections:
    """Collects paragraphs under a heading stack."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._stack: list[tuple[int, str]] = []
        self._paragraphs: list[str] = []

    @property
    def title(self) -> str:
        return TITLE_SEPARATOR.join(title for _, title in self._stack)

    def paragraph(self, text: str) -> None:
        text = text.strip("\n")
        if text.strip():
            self._paragraphs.append(text)

    def heading(self, level: int, title: str) -> None:
        self._flush()
        title = " ".join(title.split())
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        if title:
            self._stack.append((level, title))

    def _flush(self) -> None:
        if self._paragraphs:
            self.sections.append(Section(self.title, tuple(self._paragraphs)))
            self._paragraphs = []

    def done(self) -> list[Section]:
        self._flush()
        return self.sections


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RULE = re.compile(r"^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$")


def parse_markdown(text: str) -> list[Section]:
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":  # front matter
        for end in range(1, len(lines)):
            if lines[end].strip() in ("---", "..."):
                lines = lines[end + 1 :]
                break
    out = _Sections()
    block: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if block:
            out.paragraph(_unwrap(_clean("\n".join(block))))
            block.clear()

    for line in lines:
        if fence is not None:
            block.append(line)
            if line.strip().startswith(fence):
                out.paragraph("\n".join(block))  # code keeps its indentation
                block.clear()
                fence = None
            continue
        opening = _FENCE.match(line)
        if opening:
            flush()
            fence = opening.group(1)
            block.append(line)
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            out.heading(len(atx.group(1)), atx.group(2) or "")
            continue
        if block and _SETEXT.match(line):
            underline = line.strip()[0]
            title = " ".join(part.strip() for part in block)
            block.clear()
            out.heading(1 if underline == "=" else 2, title)
            continue
        if not line.strip() or _RULE.match(line):
            flush()
            continue
        block.append(line)
    if fence is not None:
        out.paragraph("\n".join(block))  # an unclosed fence: keep what it held
    else:
        flush()
    return out.done()


def parse_text(text: str) -> list[Section]:
    paragraphs = (_unwrap(_clean(part)) for part in re.split(r"\n[ \t]*\n", text))
    kept = tuple(p for p in paragraphs if p)
    return [Section("", kept)] if kept else []


_SKIP = {"script", "style", "noscript", "template", "svg", "nav", "head", "iframe", "button", "form"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "pre",
    "table", "ul", "ol", "dl", "dd", "dt", "hr", "figure", "figcaption", "details", "summary",
    "address", "body",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _Sections()
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._pre = 0
        self._heading: tuple[int, list[str]] | None = None
        self._text: list[str] = []

    def _flush(self) -> None:
        text = "".join(self._text)
        self._text = []
        self.out.paragraph(text if self._pre else _clean(text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
            self._in_title = False
            return
        if tag == "title":
            self._in_title = True
        if self._skip:
            return
        if tag in _HEADINGS:
            self._flush()
            self._heading = (_HEADINGS[tag], [])
        elif tag in _BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre += 1
        elif tag == "li":
            self._text.append("\n- ")
        elif tag == "tr":
            self._text.append("\n")
        elif tag in ("td", "th"):
            self._text.append(" | ")
        elif tag == "br":
            self._text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag in _HEADINGS and self._heading is not None:
            level, parts = self._heading
            self._heading = None
            self.out.heading(level, "".join(parts))
        elif tag in _BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip:
            return
        if self._heading is not None:
            self._heading[1].append(data)
        else:
            self._text.append(data if self._pre else re.sub(r"\s+", " ", data))


def parse_html(text: str) -> list[Section]:
    reader = _HtmlReader()
    reader.feed(text)
    reader.close()
    reader._flush()
    sections = reader.out.done()
    title = " ".join(reader.title.split())
    if title and sections and not sections[0].title:
        sections[0] = Section(title, sections[0].paragraphs)
    return sections


def parse_pdf(path: Path, data: bytes) -> list[Section]:
    import pypdf  # imported on first use: a PDF is rare next to Markdown

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile(path, "the PDF is encrypted")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").replace("-\n", "")
            paragraphs = tuple(
                " ".join(_clean(part).split("\n")) for part in re.split(r"\n[ \t]*\n", text) if part.strip()
            )
            if paragraphs:
                sections.append(Section(f"page {number}", paragraphs))
    except UnreadableFile:
        raise
    except Exception as exc:
        raise UnreadableFile(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    return sections
