"""The platform-neutral parts of feedback: the button payload, which turn a reply's buttons name, and the
stats table of votes."""

from __future__ import annotations

import pytest

from adapters.feedback import TurnWatch, parse_payload, payload
from bots.commands.stats import feedback_table
from core.incoming import IncomingMessage
from core.store import DOWN, UP, TurnRecord, VoteCount


def test_the_payload_names_the_turn_and_the_vote_and_fits_every_platform() -> None:
    for turn_id, vote in ((1, UP), (42, DOWN), (10**18 - 1, DOWN)):
        data = payload(turn_id, vote)
        assert parse_payload(data) == (turn_id, vote)
        assert len(data.encode()) <= 64  # Telegram callback_data; Discord custom_id allows 100


@pytest.mark.parametrize(
    "data",
    [None, "", "fb:1:sideways", "fb::up", "fb:-1:up", "xx:1:up", "fb:1:up:extra", "fb:" + "9" * 19 + ":up"],
)
def test_anything_else_is_not_a_vote(data: str | None) -> None:
    assert parse_payload(data) is None


async def test_a_reply_is_matched_to_its_own_turn_only() -> None:
    watch = TurnWatch(limit=2)
    asked, other = IncomingMessage("s", "hi", "u"), IncomingMessage("s", "hi", "u")
    record = TurnRecord("s", "hi", "hello", 1.0, 5.0, 1, 1, "ok", "m", "u")
    await watch.on_turn(asked, record)
    assert watch.take(other) is None  # an equal message is not the same message
    assert watch.take(asked) is record
    assert watch.take(asked) is None  # taken once
    for index in range(5):  # replies that never reached their hook are not kept for ever
        await watch.on_turn(IncomingMessage("s", str(index)), record)
    assert len(watch._turns) == 2


def test_the_votes_table_shows_the_positive_share_per_bot_and_platform() -> None:
    assert feedback_table([]) == ""
    text = feedback_table([VoteCount("orbit", "telegram", 3, 1), VoteCount("orbit", "slack", 0, 2)])
    rows = {
        line.split(" on ")[0] + " " + line.split()[2]: line.split()[-4:] for line in text.splitlines()[3:5]
    }
    assert rows == {"orbit slack": ["0", "2", "2", "0%"], "orbit telegram": ["3", "1", "4", "75%"]}
    assert text.splitlines()[-1].split() == ["all", "3", "3", "6", "50%"]
