"""Reading documents into titled sections, and cutting them into token-sized, overlapping passages."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from core.tokens import TokenCounter
from features.knowledge.chunking import chunk_document, chunk_paragraphs
from features.knowledge.readers import (
    Document,
    Section,
    UnreadableFile,
    find_files,
    parse_document,
    parse_html,
    parse_markdown,
    parse_text,
    read_file,
)

ORBIT_DOCS = Path(__file__).resolve().parent.parent / "bots" / "data" / "orbit" / "docs"


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter("text-embedding-3-small", allow_download=False)


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF with one text line per string (Helvetica), for reader tests."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        stream = "BT /F1 11 Tf 14 TL 72 740 Td " + " ".join(f"({escape(line)}) '" for line in lines) + " ET"
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def test_markdown_sections_follow_the_heading_path() -> None:
    text = """---
title: ignored front matter
---
# Pricing

Intro paragraph
wrapped over two lines.

## Pro

Costs $12.

- item one
- item two

### Limits

```
# not a heading
code stays
```

## Business
Costs $24.

Enterprise
----------

Ask sales.
"""
    sections = parse_markdown(text)
    assert [s.title for s in sections] == [
        "Pricing",
        "Pricing > Pro",
        "Pricing > Pro > Limits",
        "Pricing > Business",
        "Pricing > Enterprise",
    ]
    assert sections[0].paragraphs == ("Intro paragraph wrapped over two lines.",)
    assert sections[1].paragraphs == ("Costs $12.", "- item one\n- item two")
    assert sections[2].paragraphs == ("```\n# not a heading\ncode stays\n```",)
    assert sections[4].paragraphs == ("Ask sales.",)


def test_html_headings_lists_and_tables_without_scripts_or_navigation() -> None:
    html = """<html><head><title>Guide</title><style>p {color: red}</style></head><body>
    <nav>Home | Docs</nav>
    <p>Welcome &amp; hello.</p>
    <h2>Invite</h2><p>Open <b>Settings</b>.</p><ul><li>One</li><li>Two</li></ul>
    <h3>Shortcuts</h3><table><tr><td>N</td><td>New task</td></tr></table>
    <script>var x = "not text";</script></body></html>"""
    sections = parse_html(html)
    assert sections[0] == Section("Guide", ("Welcome & hello.",))
    assert sections[1] == Section("Invite", ("Open Settings.", "- One\n- Two"))
    assert sections[2].title == "Invite > Shortcuts" and "N | New task" in sections[2].paragraphs[0]
    assert "not text" not in str(sections) and "Home" not in str(sections)


def test_plain_text_paragraphs() -> None:
    assert parse_text("First line\nsame paragraph.\n\n\nSecond.\n") == [
        Section("", ("First line same paragraph.", "Second."))
    ]


def test_pdf_pages_become_sections(tmp_path: Path) -> None:
    path = tmp_path / "sla.pdf"
    path.write_bytes(make_pdf([["Orbit SLA", "Business gets 99.9% uptime."], ["Page two text."]]))
    document = parse_document(path, "sla.pdf", read_file(path))
    assert [s.title for s in document.sections] == ["page 1", "page 2"]
    assert document.sections[0].paragraphs == ("Orbit SLA Business gets 99.9% uptime.",)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "not a readable PDF"),
        ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00", "binary data"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("empty.md", b"   \n\n", "no text found"),
        ("image.png", b"...", "unsupported file type"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnreadableFile) as caught:
        parse_document(path, name, read_file(path))
    assert reason in caught.value.reason and caught.value.path == path


def test_folders_are_walked_recursively_skipping_hidden_and_unsupported(tmp_path: Path) -> None:
    for name in ("a.md", "sub/b.txt", "sub/deeper/c.html", ".hidden/d.md", "e.png", ".f.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in find_files(tmp_path)]
    assert found == ["a.md", "sub/b.txt", "sub/deeper/c.html"]


def test_chunks_respect_the_limit_and_overlap(counter: TokenCounter) -> None:
    sentences = [f"Sentence number {i} says something about plan {i % 7} and its limits." for i in range(60)]
    paragraphs = [" ".join(sentences[i : i + 6]) for i in range(0, 60, 6)]
    chunks = chunk_paragraphs(paragraphs, counter, max_tokens=80, overlap=20)
    assert len(chunks) > 5
    assert all(counter.count(chunk) <= 80 for chunk in chunks)
    for before, after in itertools.pairwise(chunks):
        head = after.split()[:3]
        assert " ".join(head) in before, "each chunk starts with the end of the one before"
    text = " ".join(chunks)
    assert all(sentence in text for sentence in sentences), "nothing is lost"


def test_paragraphs_are_kept_whole_when_they_fit(counter: TokenCounter) -> None:
    chunks = chunk_paragraphs(["Short one.", "Short two.", "Short three."], counter, 300, 40)
    assert chunks == ["Short one.\n\nShort two.\n\nShort three."]


def test_a_huge_word_is_cut(counter: TokenCounter) -> None:
    chunks = chunk_paragraphs(["x" * 5000], counter, 50, 10)
    assert len(chunks) > 1 and all(counter.count(c) <= 50 for c in chunks)


def test_chunks_never_span_sections_and_keep_source_and_title(counter: TokenCounter) -> None:
    document = Document(
        Path("pricing.md"),
        "pricing.md",
        (
            Section("Pricing > Pro", ("Pro costs $12.",)),
            Section("Pricing > Business", ("Business costs $24.",)),
        ),
        "hash",
    )
    chunks = chunk_document(document, counter, 300, 40)
    assert [(c.source, c.section, c.text) for c in chunks] == [
        ("pricing.md", "Pricing > Pro", "Pro costs $12."),
        ("pricing.md", "Pricing > Business", "Business costs $24."),
    ]
    assert all(c.tokens == counter.count(c.text) for c in chunks)


def test_orbit_docs_chunk_within_the_default_limit(counter: TokenCounter) -> None:
    for path in find_files(ORBIT_DOCS):
        chunks = chunk_document(parse_document(path, path.name, read_file(path)), counter, 300, 40)
        assert chunks, path
        assert all(0 < c.tokens <= 300 and c.section for c in chunks), path
