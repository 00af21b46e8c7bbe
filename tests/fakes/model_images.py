"""Reading what the fake model was sent beside text: image content parts (OpenAI chat format,
https://platform.openai.com/docs/guides/images-vision: ``{"type": "image_url", "image_url": {"url":
"data:image/jpeg;base64,...", "detail": ...}}``) and the text parts of a message."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def text_of(content: Any) -> str:
    """A message's text: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or () if p.get("type") == "text")


def image_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every image part of a chat request, in order."""
    return [
        part
        for message in body.get("messages", ())
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def image_size(part: dict[str, Any]) -> tuple[int, int]:
    """The pixel size of an image part's ``data:`` URL, decoded as the model server would."""
    url = part["image_url"]["url"]
    header, _, data = url.partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64"), header
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        image.load()
        return image.size
