"""The streaming engine against a recording target on a virtual clock: pacing, splitting, final edits."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from core.pacing import RateGate
from core.streaming import WRITING_MARKER, PlatformLimits, stream_reply
from tests.support.clock import VirtualClock
from tests.support.recording_target import RecordingTarget


def words(n: int) -> list[str]:
    return [f"word{i} " for i in range(n)]


async def paced(
    chunks: list[str], clock: VirtualClock, every: float, first: float = 0.0
) -> AsyncIterator[str]:
    if first:
        await clock.sleep(first)
    for index, chunk in enumerate(chunks):
        if index:
            await clock.sleep(every)
        yield chunk


def target(max_chars: int = 4096, interval: float = 1.0, **kw: object) -> RecordingTarget:
    clock = VirtualClock()
    return RecordingTarget(PlatformLimits(max_chars=max_chars, min_edit_interval=interval, **kw), clock)  # type: ignore[arg-type]


async def test_first_text_is_sent_at_once_and_final_text_is_complete() -> None:
    t = target()
    chunks = words(50)
    result = await stream_reply(paced(chunks, t.clock, 0.1, first=2.0), t, t.clock)
    first = t.changes()[0]
    assert first.kind == "send" and first.at == pytest.approx(1002.0)
    assert t.visible() == ["".join(chunks)]
    assert result.messages == t.visible()
    assert WRITING_MARKER not in t.visible()[0]
    assert t.changes()[-1].final


async def test_edits_of_one_message_are_at_least_the_interval_apart() -> None:
    t = target(interval=1.0)
    await stream_reply(paced(words(200), t.clock, 0.05), t, t.clock)  # a 10-second stream
    times = [c.at for c in t.changes()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 - 1e-9
    assert 8 <= len(times) <= 12  # about one edit a second, not one per delta
    assert all(WRITING_MARKER in c.text for c in t.changes()[:-1])


async def test_a_slow_stream_shows_new_text_within_one_interval() -> None:
    t = target(interval=1.0)
    await stream_reply(paced(["a ", "b ", "c "], t.clock, 5.0), t, t.clock)
    # each chunk arrives 5 s apart: each becomes visible at once, no edit waits for more text,
    # and the end of the stream is shown at once as the final text
    assert [c.at - 1000.0 for c in t.changes()] == pytest.approx([0.0, 5.0, 10.0])
    assert t.changes()[-1].final and t.visible() == ["a b c "]


async def test_long_reply_rolls_over_at_clean_boundaries_and_loses_nothing() -> None:
    t = target(max_chars=200, interval=0.5)
    paragraphs = [f"Paragraph {i} " + "lorem ipsum dolor sit amet. " * 3 + "\n\n" for i in range(30)]
    text = "".join(paragraphs)
    await stream_reply(paced([text[i : i + 17] for i in range(0, len(text), 17)], t.clock, 0.05), t, t.clock)
    shown = t.visible()
    assert len(shown) > 10
    assert all(len(m) <= 200 for m in shown)
    assert " ".join(shown).split() == text.split()
    assert all(m.rstrip().endswith(".") for m in shown)  # cut at paragraph or sentence ends, never mid-word
    assert not any(WRITING_MARKER in m for m in shown)


async def test_code_block_is_closed_and_reopened_across_messages() -> None:
    t = target(max_chars=120, interval=0.1)
    code = "```python\n" + "".join(f"print({i})\n" for i in range(40)) + "```\n"
    await stream_reply(paced([code], t.clock, 0.0), t, t.clock)
    shown = t.visible()
    assert len(shown) > 2
    for message in shown:
        assert message.count("```") % 2 == 0, message
        assert message.startswith("```python")
    body = [line for m in shown for line in m.splitlines() if line.startswith("print")]
    assert body == [f"print({i})" for i in range(40)]


async def test_rate_limit_on_a_preview_merges_text_into_the_next_edit() -> None:
    t = target(interval=1.0)
    t.rate_limits.extend([7.0])
    chunks = words(100)
    await stream_reply(paced(chunks, t.clock, 0.1), t, t.clock)
    edits = t.changes()
    assert edits[1].at - edits[0].at >= 7.0  # the limited edit was postponed by retry_after ...
    assert t.visible() == ["".join(chunks)]  # ... and nothing was lost


async def test_rate_limit_on_the_final_edit_is_waited_out() -> None:
    t = target(interval=1.0)
    t.rate_limits.extend([30.0, 30.0])  # the first two edits answer "retry after 30 s"
    chunks = ["hello ", "world"]
    await stream_reply(paced(chunks, t.clock, 0.0), t, t.clock)
    assert t.visible() == ["hello world"]
    assert t.changes()[-1].final


async def test_rate_limit_on_the_first_send_is_retried() -> None:
    t = target(interval=1.0)
    t.rate_limit_on = "send"
    t.rate_limits.extend([3.0])
    await stream_reply(paced(["only text"], t.clock, 0.0), t, t.clock)
    assert t.visible() == ["only text"]
    assert t.changes()[0].at >= 1003.0


async def test_no_edit_repeats_the_text_already_shown() -> None:
    t = target(interval=0.5)
    await stream_reply(paced(["same", "", "", " text"], t.clock, 1.0), t, t.clock)
    texts = [c.text for c in t.changes()]
    assert len(texts) == len(set(texts))  # RecordingTarget also asserts every edit changes something


async def test_typing_is_renewed_until_the_first_text() -> None:
    t = target(interval=1.0, typing_interval=4.0)
    await stream_reply(paced(["late answer"], t.clock, 0.0, first=13.0), t, t.clock)
    typing = [c.at - 1000.0 for c in t.calls if c.kind == "typing"]
    assert typing == pytest.approx([0.0, 4.0, 8.0, 12.0])
    assert all(c.kind != "typing" for c in t.calls if c.at > 1013.0)


async def test_empty_reply_still_ends_with_a_message() -> None:
    t = target()
    await stream_reply(paced([" ", "\n"], t.clock, 0.1), t, t.clock)
    assert t.visible() == ["(no reply)"]


async def test_shared_gate_keeps_concurrent_replies_within_the_pace() -> None:
    import asyncio

    clock = VirtualClock()
    gate = RateGate(5, 5.0, clock)
    limits = PlatformLimits(max_chars=2000, min_edit_interval=0.2)
    targets = [RecordingTarget(limits, clock, gate=gate) for _ in range(4)]
    await asyncio.gather(*(stream_reply(paced(words(100), clock, 0.05), t, clock) for t in targets))
    calls = sorted(c.at for t in targets for c in t.changes())
    # never more than 5 calls in any 5-second window
    for i, start in enumerate(calls):
        in_window = [c for c in calls[i:] if c < start + 5.0]
        assert len(in_window) <= 5
    for t in targets:
        assert t.visible() == ["".join(words(100))]


async def test_failure_of_the_source_still_shows_what_arrived() -> None:
    t = target()

    async def broken() -> AsyncIterator[str]:
        yield "partial answer"
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        await stream_reply(broken(), t, t.clock)
    assert t.visible() == ["partial answer"]


async def test_a_retraction_replaces_everything_shown() -> None:
    from core.hooks import Retraction

    t = target(max_chars=100, interval=0.5)

    async def withdrawn() -> AsyncIterator[str]:
        for i in range(30):
            yield f"secret part {i}. "
            await t.clock.sleep(0.1)
        yield Retraction("Sorry, I can't share that.")

    result = await stream_reply(withdrawn(), t, t.clock)
    shown = t.visible()
    assert shown[-1] == "Sorry, I can't share that."
    assert all(m == "(withdrawn)" for m in shown[:-1]) and len(shown) > 1
    assert not any("secret" in m for m in shown)
    assert result.messages == shown


async def test_a_busy_gate_delays_previews_but_not_the_final_edit() -> None:
    clock = VirtualClock()
    gate = RateGate(5, 60.0, clock)  # four preview slots a minute, one kept for final edits
    t = RecordingTarget(PlatformLimits(max_chars=2000, min_edit_interval=0.5), clock, gate=gate)
    chunks = words(40)
    await stream_reply(paced(chunks, clock, 0.1), t, clock)  # a 4-second stream
    assert t.visible() == ["".join(chunks)]
    assert t.changes()[-1].at - clock.now() == 0 and clock.now() < 1000.0 + 10.0  # not held for the window


async def test_a_retraction_during_an_in_flight_rollover_send_leaves_no_blocked_text() -> None:
    from core.hooks import Retraction

    t = target(max_chars=100, interval=0.5)
    t.latency = 0.5  # every platform call takes half a second

    async def withdrawn() -> AsyncIterator[str]:
        yield "blocked words here. " * 8  # over the limit at once: the first call is a rollover's send
        await t.clock.sleep(0.1)
        assert t.in_flight, "the retraction must land while the rollover message is being sent"
        yield Retraction("Sorry, I can't share that.")

    result = await stream_reply(withdrawn(), t, t.clock)
    shown = t.visible()
    assert not any("blocked" in m for m in shown), shown
    assert shown[-1] == "Sorry, I can't share that."
    assert result.messages == shown


async def test_a_retraction_during_an_in_flight_preview_edit_leaves_no_blocked_text() -> None:
    from core.hooks import Retraction

    t = target(max_chars=4096, interval=0.2)
    t.latency = 0.5

    async def withdrawn() -> AsyncIterator[str]:
        for i in range(6):
            yield f"blocked part {i}. "
            await t.clock.sleep(0.3)
        assert t.in_flight
        yield Retraction("Sorry, I can't share that.")

    await stream_reply(withdrawn(), t, t.clock)
    assert t.visible() == ["Sorry, I can't share that."]


async def test_a_platform_failure_mid_stream_closes_the_source_and_raises() -> None:
    from core.errors import PlatformError

    t = target(interval=0.5)
    t.latency = 0.05
    t.failures[("edit", 3)] = PlatformError("the platform fell over")
    produced: list[int] = []
    closed: list[bool] = []

    async def endless() -> AsyncIterator[str]:
        try:
            for i in range(10_000):
                produced.append(i)
                yield f"word{i} "
                await t.clock.sleep(0.1)
        finally:
            closed.append(True)

    with pytest.raises(PlatformError):
        await stream_reply(endless(), t, t.clock)
    assert closed == [True], "the chunk source must be closed when the platform fails"
    assert len(produced) < 100, "the source must not run on after the failure"
    assert WRITING_MARKER in t.visible()[0], "what the user saw is the last preview that landed"


async def test_a_reply_of_exactly_the_limit_ends_as_one_message() -> None:
    # the text fits one message but not with the writing marker: a preview must not roll it over
    t = target(max_chars=200, interval=0.1)
    text = ("Exactly two hundred characters, with no room for the marker. " * 4)[:200]
    chunks = [text[i : i + 25] for i in range(0, 200, 25)]

    async def stream() -> AsyncIterator[str]:
        async for chunk in paced(chunks, t.clock, 0.5):
            yield chunk
        await t.clock.sleep(2.0)  # the model is slow to say it is done: previews of the full text fire

    result = await stream_reply(stream(), t, t.clock)
    assert t.visible() == [text]
    assert result.messages == [text]


async def test_the_final_edit_goes_at_once_when_the_chat_budget_has_room() -> None:
    from core.pacing import BurstGate

    clock = VirtualClock()
    gate = BurstGate(3, 1.0, clock, margin=0.0)  # Telegram's chat: three calls at once, then one a second
    t = RecordingTarget(PlatformLimits(max_chars=4096, min_edit_interval=1.0), clock, gate=gate)
    # text at 0 s (sent), 1.0 s (preview), and the reply ends at 1.3 s: the budget still has a call
    chunks = ["First words. ", "More words. ", "Last words."]
    delays = iter([0.0, 1.0, 0.3])

    async def stream() -> AsyncIterator[str]:
        for chunk in chunks:
            await clock.sleep(next(delays))
            yield chunk

    await stream_reply(stream(), t, clock)
    changes = t.changes()
    assert [c.at - 1000.0 for c in changes] == pytest.approx([0.0, 1.0, 1.3])  # not held to 2.0 s
    assert changes[-1].final and t.visible() == ["".join(chunks)]


async def test_a_burst_gate_allows_its_burst_then_one_call_per_interval() -> None:
    from core.pacing import BurstGate

    clock = VirtualClock()
    gate = BurstGate(3, 1.0, clock, margin=0.0)
    times = []
    for _ in range(6):
        await gate.acquire()
        times.append(clock.now() - 1000.0)
    assert times == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])
    # previews keep one call of the burst for a final edit
    await clock.sleep(10.0)
    assert [gate.try_acquire() for _ in range(3)] == [True, True, False]
    await gate.acquire()  # the final edit goes at once
    assert clock.now() - 1000.0 == pytest.approx(13.0)
