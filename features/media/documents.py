"""Which attached files are read as documents, and their text.

Markdown, plain text, HTML and PDF go through the knowledge base's readers
(:mod:`features.knowledge.readers`), so a document reads the same attached as ingested; code, CSV and
other plain-text data formats are kept verbatim (indentation and columns matter there). A file is known by
its name's suffix, else by its MIME type.
"""

from __future__ import annotations

from pathlib import Path

from core.attachments import AttachmentError
from features.knowledge.readers import UnreadableFile, decode_text, kind_of, parse_document

VERBATIM_SUFFIXES = frozenset(
    {
        ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".log",
        ".xml", ".sql", ".py", ".pyi", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".go", ".rs",
        ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala", ".sh", ".bash",
        ".zsh", ".ps1", ".r", ".lua", ".pl", ".dart", ".css", ".scss", ".vue", ".svelte", ".ipynb",
        ".env.example", ".diff", ".patch", ".tex",
    }
)  # fmt: skip
MIME_SUFFIXES = {
    "application/pdf": ".pdf",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/html": ".html",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/json": ".json",
    "application/x-yaml": ".yaml",
    "text/x-python": ".py",
    "text/x-script.python": ".py",
    "application/xml": ".xml",
    "text/xml": ".xml",
}
SUPPORTED = "text, Markdown, code, CSV, JSON, PDF and HTML"


def document_path(name: str, mime: str) -> Path | None:
    """The name to read a document by (its own, or one with the suffix its MIME type implies), or
    ``None`` when the bot does not read this kind of file."""
    path = Path(name or "file")
    if kind_of(path) is not None or path.suffix.lower() in VERBATIM_SUFFIXES:
        return path
    suffix = MIME_SUFFIXES.get(mime.lower().split(";")[0].strip())
    if suffix is None and mime.lower().startswith("text/"):
        suffix = ".txt"
    return path.with_name(path.name + suffix) if suffix else None


def document_text(path: Path, data: bytes) -> tuple[str, str]:
    """``(text, description)`` of a document (CPU: run in a thread); the description names what was read
    (``3 pages``) for the stored placeholder."""
    try:
        if kind_of(path) is None:
            text = decode_text(path, data).strip()
            if not text:
                raise UnreadableFile(path, "it is empty")
            lines = text.count("\n") + 1
            return text, f"{lines:,} line{'s' if lines > 1 else ''}"
        document = parse_document(path, path.name, data)
    except UnreadableFile as exc:
        raise AttachmentError(exc.reason) from exc
    blocks = []
    for section in document.sections:
        body = "\n\n".join(section.paragraphs)
        blocks.append(f"{section.title}\n{body}" if section.title else body)
    pages = sum(1 for s in document.sections if s.title.startswith("page ")) if kind_of(path) == "pdf" else 0
    if pages:
        return "\n\n".join(blocks), f"{pages} page{'s' if pages > 1 else ''} with text"
    count = len(document.sections)
    return "\n\n".join(blocks), f"{count} section{'s' if count > 1 else ''}"
