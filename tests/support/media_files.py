"""Files for the media tests, made in the test (no binary fixtures): images with Pillow, a PDF with a
minimal writer that pypdf reads, and sounds that are only bytes (the fake transcribes by content)."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(width: int, height: int, fmt: str = "JPEG", *, alpha: bool = False) -> bytes:
    """An image of that size, with a gradient so it compresses like a photo rather than to nothing."""
    mode = "RGBA" if alpha else "RGB"
    image = Image.new(mode, (width, height))
    image.putdata(
        [
            ((x * 255) // max(1, width), (y * 255) // max(1, height), 128, 128)[: len(mode)]
            for y in range(height)
            for x in range(width)
        ]
    )
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def large_image_bytes(width: int, height: int) -> bytes:
    """A big plain image, fast to make (a gradient of millions of pixels is slow in pure Python)."""
    image = Image.new("RGB", (width, height), (200, 120, 40))
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def corrupt_image_bytes() -> bytes:
    """A JPEG cut short after its header: it opens, and fails when its pixels are read."""
    whole = image_bytes(64, 64)
    return whole[: len(whole) // 3]


def pdf_bytes(*pages: str) -> bytes:
    """A PDF with one line of Helvetica text per page (PDF 1.4, the smallest valid file pypdf reads)."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{n} 0 R" for n in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(len(pages)).encode() + b" >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")
        stream = b"BT /F1 12 Tf 72 720 Td (" + escaped + b") Tj ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents " + str(page_ids[i] + 1).encode() + b" 0 R >>"
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def corrupt_pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\ngarbage"


VOICE = b"OggS\x00\x02fake-opus-voice-note"  # the fake transcribes by content, it never decodes audio
