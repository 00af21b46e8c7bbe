"""Contract: :class:`core.store.ReplyJournal` (replies in flight, for crash recovery)."""

from __future__ import annotations

from core.store import ReplyJournal, Storage


async def test_a_reply_in_flight_is_kept_with_what_it_showed_until_it_ends(store: Storage) -> None:
    assert isinstance(store, ReplyJournal)
    first = await store.begin_reply("s1", "telegram", "orbit", "telegram:1", {"chat": 1, "thread": None})
    second = await store.begin_reply("s2", "telegram", "orbit", "telegram:2", {"chat": 2})
    await store.begin_reply("s3", "slack", "orbit", "slack:U1", {"channel": "C1"})
    await store.begin_reply("s4", "telegram", "default", "telegram:3", {"chat": 3})
    await store.reply_shown(first, {"message_id": 77}, "Half a rep")
    await store.mark_turn_recorded(first)

    found = await store.unfinished_replies("telegram", "orbit")
    assert [r.id for r in found] == [first, second]
    one, two = found
    assert (one.session_id, one.platform, one.bot, one.user_id) == ("s1", "telegram", "orbit", "telegram:1")
    assert one.address == {"chat": 1, "thread": None}
    assert one.message == {"message_id": 77} and one.shown == "Half a rep" and one.turn_recorded
    assert two.message is None and two.shown == "" and not two.turn_recorded
    assert one.started_at > 0

    await store.end_reply(first)
    assert [r.id for r in await store.unfinished_replies("telegram", "orbit")] == [second]
    await store.end_reply(first)  # ending twice is harmless
