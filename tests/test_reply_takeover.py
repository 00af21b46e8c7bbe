"""The pieces a work queue's takeover is built from, without a queue: a reply streamed into a message a
dead worker left, a stored answer shown without a new turn, a question stored once per delivery."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from adapters.base import ReplyDispatcher
from core.streaming import WRITING_MARKER, PlatformLimits, stream_reply
from tests.fakes.openai_server import FakeOpenAI
from tests.support.clock import VirtualClock
from tests.support.engines import engine_for, said
from tests.support.recording_target import RecordingTarget


def target() -> RecordingTarget:
    return RecordingTarget(PlatformLimits(max_chars=4096, min_edit_interval=1.0), VirtualClock())


async def chunks(*parts: str):  # type: ignore[no-untyped-def]
    for part in parts:
        yield part


async def test_a_reply_streamed_into_a_left_message_edits_it_and_sends_nothing_new() -> None:
    t = target()
    left = await t.send("Half a rep" + WRITING_MARKER, final=False)  # what the dead worker showed
    await stream_reply(chunks("A whole ", "new reply."), t, t.clock, into=left)
    assert t.visible() == ["A whole new reply."]
    assert [c.kind for c in t.calls if c.kind != "typing"].count("send") == 1  # the dead worker's only
    assert t.calls[-1].final


async def test_a_reply_too_long_for_the_left_message_rolls_over_as_usual() -> None:
    t = RecordingTarget(PlatformLimits(max_chars=40, min_edit_interval=1.0), VirtualClock())
    left = await t.send("Half" + WRITING_MARKER, final=False)
    words = " ".join(f"word{i}" for i in range(12))
    await stream_reply(chunks(words), t, t.clock, into=left)
    shown = t.visible()
    assert len(shown) > 1 and " ".join(shown) == words
    assert all(WRITING_MARKER not in text for text in shown)


async def test_a_stored_answer_is_shown_without_a_new_turn(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        t = target()
        left = await t.send("The ans" + WRITING_MARKER, final=False)
        dispatcher = ReplyDispatcher(engine, t.clock)
        await dispatcher.deliver(said("s1", "question"), t, into=left, answer="The answer.")
        assert t.visible() == ["The answer."]
        assert fake_model.chat_requests == []
        assert await engine.store.count_messages("s1") == 0


async def test_a_delivery_handled_twice_stores_the_question_once(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue("First try.", "Second try.")
    async with engine_for(fake_model.base_url, db_path) as engine:
        message = dataclasses.replace(said("s1", "hello"), event_id="test:1")
        await engine.reply_text(message)
        await engine.reply_text(message)  # a retried job: the same delivery again
        rows = await engine.store.messages_between("s1")
    # the question once (the queue's job, not the engine, decides not to answer a delivery twice)
    assert [m.content for m in rows if m.role == "user"] == ["hello"]
    assert [m["content"] for m in fake_model.chat_requests[1]["messages"] if m["role"] == "user"] == ["hello"]
