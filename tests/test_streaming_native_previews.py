"""The streaming core with native previews (a Telegram draft, a Slack stream): an ``edit`` may hand back the
real message that replaces the preview, and a preview left unchanged for ``refresh_after`` is shown again
(Telegram drops a draft ~30 s after its last update). A recording target on a virtual clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from core.streaming import WRITING_MARKER, PlatformLimits, stream_reply
from tests.support.clock import VirtualClock
from tests.support.recording_target import RecordingTarget
from tests.test_streaming import paced, words


@dataclass(frozen=True)
class Draft:
    id: int


@dataclass
class DraftingTarget(RecordingTarget):
    """Previews are drafts (never messages); a draft's final text is sent as a real message, handed back."""

    drafts: list[tuple[float, int, str]] = field(default_factory=list)  # (at, draft id, text)

    async def send(self, text: str, *, final: bool) -> object:
        if final:
            return await super().send(text, final=True)
        draft = Draft(100 + len({d for _, d, _ in self.drafts}))
        self.drafts.append((self.clock.now(), draft.id, text))
        return draft

    async def edit(self, ref: object, text: str, *, final: bool) -> object | None:
        if isinstance(ref, Draft):
            if final:
                return await super().send(text, final=True)
            self.drafts.append((self.clock.now(), ref.id, text))
            return None
        await super().edit(ref, text, final=final)
        return None


def drafting(max_chars: int = 4096, **kw: object) -> DraftingTarget:
    limits = PlatformLimits(max_chars=max_chars, min_edit_interval=1.0, **kw)  # type: ignore[arg-type]
    return DraftingTarget(limits, VirtualClock())


async def test_a_native_preview_ends_as_the_real_message_the_target_hands_back() -> None:
    t = drafting()
    chunks = words(40)
    result = await stream_reply(paced(chunks, t.clock, 0.2), t, t.clock)
    assert t.visible() == ["".join(chunks)] and result.messages == t.visible()
    assert result.refs == [1], "the reply reports the real message, not the draft"
    assert [c.kind for c in t.changes()] == ["send"] and t.changes()[0].final
    assert len(t.drafts) >= 3 and len({d for _, d, _ in t.drafts}) == 1
    assert all(text.endswith(WRITING_MARKER) for _, _, text in t.drafts)


async def test_each_message_of_a_long_reply_gets_its_own_preview_and_ends_real() -> None:
    t = drafting(max_chars=200)
    text = "".join(f"Sentence {i} says one more thing. " for i in range(40))
    result = await stream_reply(
        paced([text[i : i + 20] for i in range(0, len(text), 20)], t.clock, 0.3), t, t.clock
    )
    assert len(result.refs) >= 5 and all(isinstance(ref, int) for ref in result.refs)
    assert " ".join(t.visible()).split() == text.split()
    assert len({d for _, d, _ in t.drafts}) >= 4, "a new draft for each continuation"


async def test_an_unchanged_preview_is_shown_again_every_refresh_after() -> None:
    t = drafting(refresh_after=5.0)
    clock = t.clock

    async def stalls() -> AsyncIterator[str]:
        yield "first words "
        await clock.sleep(17.0)  # the model stalls
        yield "and the rest."

    await stream_reply(stalls(), t, clock)
    same = [at for at, _, text in t.drafts if text == "first words " + WRITING_MARKER]
    assert len(same) >= 4, "shown at once, then again about every 5 s of the 17 s stall"
    gaps = [b - a for a, b in itertools.pairwise(same)]
    assert all(g == pytest.approx(5.0, abs=1.01) for g in gaps)
    assert t.visible() == ["first words and the rest."]


async def test_without_refresh_after_an_unchanged_preview_is_left_alone() -> None:
    t = RecordingTarget(PlatformLimits(max_chars=4096, min_edit_interval=1.0), VirtualClock())
    clock = t.clock

    async def stalls() -> AsyncIterator[str]:
        yield "first words "
        await clock.sleep(17.0)
        yield "and the rest."

    await stream_reply(stalls(), t, clock)
    assert [c.kind for c in t.changes()] == ["send", "edit"]  # the first text, then the final text
