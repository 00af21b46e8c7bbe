"""What an image costs in the prompt, by OpenAI's published formula for tile-based vision models.

From https://platform.openai.com/docs/guides/images-vision#calculating-costs (gpt-4o, gpt-4.1, gpt-4.5,
o1/o3 family; the "GPT-4o, GPT-4.1, GPT-4o-mini, CUA, and o-series (except o4-mini)" table):

- ``detail: low``: a flat 85 tokens (the model sees a 512x512 version).
- ``detail: high`` (and ``auto``, counted as high to stay on the safe side): the image is scaled to fit in
  2048x2048, then its shortest side to 768 px; each 512 px tile of the result costs 170 tokens, plus 85.

Servers that are not OpenAI count images their own way; this estimate goes through the same correction
as text (the server's reported usage teaches the counter).
"""

from __future__ import annotations

import math

LOW_DETAIL_TOKENS = 85
TILE_TOKENS = 170
BASE_TOKENS = 85
TILE = 512
FIT = 2048
SHORT_SIDE = 768
LOW_SIDE = 512


def high_detail_size(width: int, height: int) -> tuple[int, int]:
    """The size the model works on at high detail: within 2048x2048, shortest side at most 768 px.

    Images are only ever scaled down, never up."""
    w, h = float(max(1, width)), float(max(1, height))
    scale = min(1.0, FIT / max(w, h))
    w, h = w * scale, h * scale
    scale = min(1.0, SHORT_SIDE / min(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def low_detail_size(width: int, height: int) -> tuple[int, int]:
    """The size the model works on at low detail: within 512x512."""
    width, height = max(1, width), max(1, height)
    scale = min(1.0, LOW_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """Prompt tokens of one image of ``width`` x ``height`` pixels at ``detail`` (low, high or auto)."""
    if detail == "low":
        return LOW_DETAIL_TOKENS
    w, h = high_detail_size(width, height)
    tiles = math.ceil(w / TILE) * math.ceil(h / TILE)
    return BASE_TOKENS + TILE_TOKENS * tiles
