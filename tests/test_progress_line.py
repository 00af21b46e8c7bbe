"""The passing line a tool shows (core.hooks.Progress) in core/streaming.py: on previews after the text so
far, replaced by the next text, never in a final message, never reported as the reply's text."""

from __future__ import annotations

from collections.abc import AsyncIterator

from core.hooks import Progress
from core.streaming import WRITING_MARKER, PlatformLimits, stream_reply
from tests.support.clock import VirtualClock
from tests.support.recording_target import RecordingTarget


def target(max_chars: int = 4096) -> RecordingTarget:
    return RecordingTarget(PlatformLimits(max_chars=max_chars, min_edit_interval=1.0), VirtualClock())


async def with_a_tool(clock: VirtualClock, before: str, after: str) -> AsyncIterator[str]:
    yield before
    await clock.sleep(0.5)
    yield Progress("🔧 Using the weather…")
    await clock.sleep(5.0)  # the tool runs for five seconds
    yield Progress("")
    yield after


async def test_the_progress_line_shows_while_the_tool_runs_and_the_final_text_is_clean() -> None:
    t = target()
    shown: list[str] = []

    async def on_shown(ref: object, text: str) -> None:
        shown.append(text)

    result = await stream_reply(
        with_a_tool(t.clock, "Let me check.", "\n\nSunny."), t, t.clock, on_shown=on_shown
    )
    texts = [c.text for c in t.changes()]
    assert f"Let me check.\n\n🔧 Using the weather…{WRITING_MARKER}" in texts
    assert result.messages == ["Let me check.\n\nSunny."]
    assert t.changes()[-1].final and "🔧" not in t.changes()[-1].text
    assert not any("🔧" in text for text in shown), "the journal keeps the reply's text, not the line"


async def test_a_progress_line_before_any_text_is_the_first_message() -> None:
    t = target()
    await stream_reply(with_a_tool(t.clock, "", "Sunny."), t, t.clock)
    first = t.changes()[0]
    assert first.kind == "send" and first.text == f"🔧 Using the weather…{WRITING_MARKER}"
    assert t.visible() == ["Sunny."]


async def test_a_reply_that_fills_the_message_shows_no_line_rather_than_cut_text() -> None:
    t = target(max_chars=40)
    text = "x" * 36
    await stream_reply(with_a_tool(t.clock, text, ""), t, t.clock)
    assert not any("🔧" in c.text for c in t.changes())
    assert t.visible() == [text]
