"""Telegram's native streaming: drafts (``sendMessageDraft``) in private chats, finished with one real
message; groups keep edits; a refused draft falls back to edits without losing text. The real PTB
Application against the fake Bot API (tests/fakes/telegram_api.py) and the fake model."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

import adapters.telegram.runner as telegram_runner
from adapters.in_flight import INTERRUPTED_NOTE
from bots.app import open_engine, running_platforms
from core.conversation import INTERRUPTED
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_api import FakeTelegram
from tests.support.engines import settings_for
from tests.test_crash_recovery import LONG, eventually, killed_mid_reply, model_env, turns
from tests.test_telegram_adapter import FAST, MARKER, replies, running

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

WORDS = " ".join(f"word{i}" for i in range(60)) + "."


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", replace(FAST, draft_refresh=0.3))


def edits(telegram: FakeTelegram, chat_id: int) -> list[str]:
    return [c.params["text"] for c in telegram.calls_to("editMessageText", chat_id) if c.ok]


async def test_a_private_chat_streams_in_drafts_and_ends_with_one_formatted_message(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    text = "**Bold** start. " + WORDS
    fake_model.queue(Reply(text=text, chunk_size=12, delay=0.03, first_delay=0.2))
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "tell me words")
        assert await replies(telegram, runner, 1001) == [text.replace("**", "")]
    drafts = telegram.drafts_in(1001)
    assert len(drafts) >= 2, "the reply should stream through several drafts"
    assert len({d["draft_id"] for d in drafts}) == 1, "one draft, animated, for one message"
    shown = [d["text"].removesuffix(MARKER).rstrip() for d in drafts]
    assert all(text.startswith(s) for s in shown) and shown == sorted(shown, key=len)
    (message,) = telegram.bot_messages(1001)
    assert message.versions == [text.replace("**", "")], "one real message, never edited"
    assert message.markup is not None and "<b>Bold</b>" in message.markup
    assert edits(telegram, 1001) == []
    assert telegram.calls_to("sendChatAction", 1001), "typing until the first text"


async def test_a_group_and_a_topic_stream_by_edits_without_drafts(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(
        Reply(text=WORDS, chunk_size=12, delay=0.03, first_delay=0.2),
        Reply(text=WORDS, chunk_size=12, delay=0.03, first_delay=0.2),
    )
    group = telegram.group_chat(-100, forum=True)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(group, "@test_bot tell me words")
        assert await replies(telegram, runner, -100) == [WORDS]
        telegram.user_message(group, "@test_bot again", thread_id=7)
        assert await replies(telegram, runner, -100, 2) == [WORDS, WORDS]
    assert telegram.drafts == []
    assert len(edits(telegram, -100)) >= 2
    assert telegram.bot_messages(-100)[1].thread_id == 7


async def test_an_unknown_draft_method_falls_back_to_edits_for_good(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(
        Reply(text=WORDS, chunk_size=12, delay=0.03), Reply(text="second " + WORDS, chunk_size=12, delay=0.03)
    )
    chat = telegram.private_chat(1001)
    # an older Bot API server: unknown methods are 404 Not Found
    telegram.fail_next("sendMessageDraft", status=404, description="Not Found")
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "tell me words")
        assert await replies(telegram, runner, 1001) == [WORDS]
        telegram.user_message(chat, "again")
        assert await replies(telegram, runner, 1001, 2) == [WORDS, "second " + WORDS]
    assert len(telegram.calls_to("sendMessageDraft")) == 1, "refused once, not tried again"
    assert len(edits(telegram, 1001)) >= 2


async def test_a_draft_refused_mid_reply_goes_on_by_edits_without_losing_or_repeating_text(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(Reply(text=WORDS, chunk_size=6, delay=0.04))
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "tell me words")
        await telegram.wait_for(lambda: len(telegram.drafts_in(1001)) >= 2)
        telegram.fail_next("sendMessageDraft", status=400, description="Bad Request: TEXTDRAFT_PEER_INVALID")
        assert await replies(telegram, runner, 1001) == [WORDS]
    (message,) = telegram.bot_messages(1001)
    assert message.versions[0].endswith(MARKER), "the preview went on in an ordinary message"
    assert edits(telegram, 1001), "and was edited from there"


async def test_a_long_reply_in_drafts_arrives_whole_across_messages(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    long = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 12 for i in range(30))
    fake_model.queue(Reply(text=long, chunk_size=400, delay=0.06))
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "a lot please")
        shown = await replies(telegram, runner, 1001, 3)
    assert len(shown) >= 3 and all(len(m) <= 4096 for m in shown)
    assert "".join(shown).replace("\n", "").replace(" ", "") == long.replace("\n", "").replace(" ", "")
    assert len({d["draft_id"] for d in telegram.drafts_in(1001)}) >= 2, "a new draft per message"
    assert all(len(m.versions) == 1 for m in telegram.bot_messages(1001))


async def test_a_429_on_a_draft_is_waited_out_and_nothing_is_lost(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(Reply(text=WORDS, chunk_size=6, delay=0.03))
    chat = telegram.private_chat(1001)
    telegram.fail_next("sendMessageDraft", retry_after=1, times=2)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "tell me words")
        assert await replies(telegram, runner, 1001) == [WORDS]
    assert len(telegram.rate_limited(1001)) == 2
    assert telegram.drafts_in(1001), "drafts went on after the wait"


async def test_a_stalled_model_keeps_the_draft_alive(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    # drafts vanish ~30 s after their last update; the tests' refresh is 0.3 s, the stall 1.2 s
    fake_model.queue(Reply(text=WORDS, chunk_size=12, pause_at=2, pause=1.2))
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "tell me words")
        assert await replies(telegram, runner, 1001) == [WORDS]
    texts = [d["text"] for d in telegram.drafts_in(1001)]
    repeated = [a for a, b in itertools.pairwise(texts) if a == b]
    assert repeated, "the unchanged draft was shown again during the stall"


async def test_a_model_failure_mid_draft_ends_in_a_clean_message_and_the_next_one_works(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(Reply(text="a partial answer that breaks off", chunk_size=6, delay=0.05, fail_after=3))
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "tell me")
        (cut,) = await replies(telegram, runner, 1001)
        telegram.user_message(chat, "are you there?")
        cut, answered = await replies(telegram, runner, 1001, 2)
    assert cut.startswith("a partial") and cut.endswith(INTERRUPTED.strip()) and MARKER not in cut
    assert answered == "You said: are you there?"
    assert len(telegram.bot_messages(1001)[0].versions) == 1


async def test_a_platform_failure_mid_draft_leaves_the_text_with_a_note_and_frees_the_chat(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(Reply(text=WORDS * 3, chunk_size=10, delay=0.05))
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "tell me a lot")
        await telegram.wait_for(lambda: len(telegram.drafts_in(1001)) >= 2)
        telegram.fail_next("sendMessageDraft", status=502, description="Bad Gateway")
        (cut,) = await replies(telegram, runner, 1001)
        telegram.user_message(chat, "are you there?")
        cut, answered = await replies(telegram, runner, 1001, 2)
    partial = cut.removesuffix(f"\n\n{INTERRUPTED_NOTE}")
    assert partial != cut and partial and (WORDS * 3).startswith(partial) and MARKER not in cut
    assert answered == "You said: are you there?"


async def test_a_draft_cut_by_a_crash_is_posted_with_its_text_and_a_note_on_the_next_start(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(Reply(text=LONG, chunk_size=10, delay=0.05))
    chat = telegram.private_chat(1001)
    env = {
        **model_env(fake_model, db_path),
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_BASE_URL": telegram.root,
    }
    async with killed_mid_reply(
        ["run", "--platform", "telegram"], tmp_path, env, lambda: len(telegram.drafts_in(1001)) >= 2
    ):
        await eventually(lambda: bool(telegram.calls_to("getUpdates")))
        telegram.user_message(chat, "tell me a lot")
    assert telegram.bot_messages(1001) == [], "the crash left only a draft, which does not outlive it"
    shown = [d["text"].removesuffix(MARKER).rstrip() for d in telegram.drafts_in(1001)]

    config = settings_for(
        fake_model.base_url, db_path, TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_BASE_URL=telegram.root
    )
    async with open_engine(config) as engine, running_platforms(config, engine, ["telegram"]) as runners:
        await eventually(lambda: len(telegram.bot_messages(1001)) == 1)
        await eventually(lambda: runners[0].in_flight == 0)  # type: ignore[attr-defined]
    [finished] = telegram.texts(1001)
    partial = finished.removesuffix(f"\n\n{INTERRUPTED_NOTE}")
    assert partial != finished and partial in shown[-2:], "the text the draft showed, then the note"
    assert await turns(db_path) == [("telegram:1001", "interrupted")]
