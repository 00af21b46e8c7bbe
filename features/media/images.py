"""Images for the model: decoded and checked with Pillow, turned upright, scaled down to what the model
works on at the chosen detail (:mod:`core.image_tokens`), and sent as JPEG ``data:`` URLs.

Sending more pixels than the model uses costs upload time and nothing else, so a 12-megapixel phone photo
leaves as a ~768x1024 JPEG of a few hundred KB. A file that is not an image, is cut short or is too large
once decoded raises :class:`core.attachments.AttachmentError` with a reason for the user.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from core.attachments import AttachmentError, ImagePart
from core.image_tokens import high_detail_size, image_tokens, low_detail_size

JPEG_QUALITY = 85
IMAGE_MIMES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})
DAMAGED = "the image could not be read (it is damaged or not an image Pillow knows)"


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready for the model, and the size it had when it arrived."""

    part: ImagePart
    original_width: int
    original_height: int


def prepare_image(data: bytes, *, detail: str, max_pixels: int) -> PreparedImage:
    """``data`` decoded, checked against ``max_pixels``, downscaled and re-encoded (CPU: run in a thread)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:  # reads the header only
                width, height = opened.size
                if width * height > max_pixels:
                    raise AttachmentError(
                        f"the image is too large ({width}x{height} pixels; "
                        f"I take at most {max_pixels / 1e6:.0f} megapixels)"
                    )
                image = ImageOps.exif_transpose(opened)  # loads the pixels: a truncated file fails here
                image = _flattened(image)
    except AttachmentError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise AttachmentError(DAMAGED) from exc
    except Image.DecompressionBombWarning as exc:
        raise AttachmentError("the image is too large once decoded") from exc
    target = low_detail_size(*image.size) if detail == "low" else high_detail_size(*image.size)
    if target != image.size:
        image = image.resize(target, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    url = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
    part = ImagePart(
        url=url,
        width=image.width,
        height=image.height,
        detail=detail,
        tokens=image_tokens(image.width, image.height, detail),
    )
    return PreparedImage(part, width, height)


def _flattened(image: Image.Image) -> Image.Image:
    """RGB, with any transparency laid on white (JPEG has no alpha); an animation's first frame."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def is_image(name: str, mime: str) -> bool:
    """Whether a file is an image the bot can read, by its MIME type or its name."""
    if mime.lower() in IMAGE_MIMES:
        return True
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_SUFFIXES
