"""What a photo adds to a turn: the same turns with one 1600x1200 JPEG attached and without, in process.

The photo's bytes come from memory (no download), so the difference is the bot's own work: decoding,
turning upright, downscaling to 1024x768 and re-encoding with Pillow, base64, and a bigger request body.
Each round runs both arms on fresh stores, alternating, so drift on a shared machine hits both alike;
figures are medians over rounds, and the ratio is taken within the run.
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image

from bench.core_overhead import sentence
from bench.instant_model import InstantModel, _Stream
from bench.report import Row
from bots.registry import get_bot
from bots.settings import Settings
from core.attachments import Attachment, AttachmentKind
from core.bot_profile import ModelParams
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.model_client import ChatMessage
from core.sqlite_store import SQLiteStore
from core.tokens import TokenCounter
from features import FeatureContext, install_features


class _MeasuringModel(InstantModel):
    """The instant model, also keeping the size of each request body it would have been sent."""

    def __init__(self) -> None:
        super().__init__()
        self.body_bytes: list[int] = []

    def stream(self, model: str, messages: Sequence[ChatMessage], params: ModelParams) -> _Stream:
        self.body_bytes.append(len(json.dumps(list(messages))))
        return super().stream(model, messages, params)


def photo(width: int = 1600, height: int = 1200) -> bytes:
    """A photo-like JPEG (gradients, so it does not compress to nothing)."""
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge(
        "RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90).resize((width, height)), gradient)
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _attachment(data: bytes) -> Attachment:
    async def fetch(limit: int) -> bytes:
        return data

    return Attachment("photo.jpg", "image/jpeg", AttachmentKind.IMAGE, size=len(data), fetch=fetch)


async def _arm(with_photo: bool, turns: int, workdir: Path, data: bytes) -> tuple[float, float, int, int]:
    """Wall ms per turn, CPU ms per turn, request bytes and prompt tokens of the last turn."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        CHATBOT_MODEL="gpt-4o",
        CHATBOT_CONTEXT_TOKENS=8192,
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
    )
    bot = replace(get_bot("default").with_settings(settings), vision=True)
    store = SQLiteStore(workdir / f"media-{with_photo}-{time.monotonic_ns()}.db")
    await store.open()
    model = _MeasuringModel()
    engine = ConversationEngine(bot, store, model, TokenCounter("gpt-4o", allow_download=False))
    context = FeatureContext(settings, engine, data_root=workdir)
    try:
        await install_features(context)
        files = (_attachment(data),) if with_photo else ()
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(turns):
            message = IncomingMessage(f"bench:{i % 10}", sentence(i), f"bench:user{i}", attachments=files)
            await engine.reply_text(message)
        wall_ms = (time.perf_counter() - start) * 1000 / turns
        cpu_ms = (time.process_time() - cpu) * 1000 / turns
        prompt = await engine.prompts.build(
            "bench:tokens", 1 << 40, sentence(0), engine.counter.message_tokens(sentence(0)), "", harder=False
        )
        tokens = prompt.raw_tokens
        if with_photo:
            reading = await engine.hooks.attachments.read(  # type: ignore[union-attr]
                IncomingMessage("bench:tokens", "", attachments=files), ""
            )
            tokens += sum(image.tokens for image in reading.images)
        return wall_ms, cpu_ms, model.body_bytes[-1], tokens
    finally:
        for close in reversed(context.closers):
            await close()
        await store.close()


async def run(quick: bool = False) -> tuple[tuple[str, ...], list[Row]]:
    turns, rounds = (10, 3) if quick else (40, 5)
    data = photo()
    results: dict[bool, list[tuple[float, float, int, int]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for with_photo in (False, True):
                results[with_photo].append(await _arm(with_photo, turns, Path(tmp), data))

    def med(arm: bool, index: int) -> float:
        return statistics.median(r[index] for r in results[arm])

    text_wall, photo_wall = med(False, 0), med(True, 0)
    text_cpu, photo_cpu = med(False, 1), med(True, 1)
    header = ("measure", "text turn", "turn with one photo", "ratio")
    rows: list[Row] = [
        (
            "wall time per turn",
            f"{text_wall:.2f} ms",
            f"{photo_wall:.2f} ms",
            f"{photo_wall / text_wall:.1f}x",
        ),
        ("CPU per turn", f"{text_cpu:.2f} ms", f"{photo_cpu:.2f} ms", f"{photo_cpu / text_cpu:.1f}x"),
        (
            "request body to the model",
            f"{med(False, 2) / 1024:.1f} KB",
            f"{med(True, 2) / 1024:.1f} KB",
            f"{med(True, 2) / med(False, 2):.0f}x",
        ),
        (
            "prompt tokens counted",
            f"{med(False, 3):.0f}",
            f"{med(True, 3):.0f}",
            f"{med(True, 3) / med(False, 3):.1f}x",
        ),
    ]
    return header, rows
