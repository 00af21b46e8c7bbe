"""A reply cut by a crash (SIGKILL mid-stream) is finished on the next start: the half-written message
loses its writing marker and says it was interrupted, and the turn is on record as interrupted."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.in_flight import INTERRUPTED_NOTE
from adapters.terminal import CUT_BEFORE, TerminalChat
from bots.app import open_engine, running_platforms
from core.sqlite_store import SQLiteStore
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_api import FakeTelegram
from tests.support.cli import start_chatbot
from tests.support.engines import settings_for

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

MARKER = "▌"
LONG = " ".join(f"word{i}" for i in range(2000))  # about 100 s at the fake's pace: never finishes here


async def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def turns(db_path: Path) -> list[tuple[Any, ...]]:
    store = SQLiteStore(db_path)
    await store.open()
    try:
        rows = await store.db.execute_fetchall("SELECT session_id, status FROM turns ORDER BY id")
        left = await store.db.execute_fetchall("SELECT COUNT(*) FROM replies_in_flight")
    finally:
        await store.close()
    assert list(left) == [(0,)], "every reply in flight is finished"
    return [tuple(r) for r in rows]


def model_env(fake_model: FakeOpenAI, db_path: Path) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "sk-test-secret-key-123456",
        "CHATBOT_DB": str(db_path),
        "CHATBOT_MODEL": "gpt-4o-mini",
        "CHATBOT_MAX_RETRIES": "0",
        "CHATBOT_LOG_FILE": "",
    }


@asynccontextmanager
async def killed_mid_reply(
    args: list[str], cwd: Path, env: dict[str, str], shown: Callable[[], bool]
) -> AsyncIterator[None]:
    """A bot process that is SIGKILLed once ``shown()`` says part of a reply is on the platform."""
    process = await start_chatbot(args, cwd, env)
    try:
        yield
        await eventually(shown)
    finally:
        process.kill()
        _out, err = await process.communicate()
    assert process.returncode == -9, err.decode()[-2000:]


async def test_telegram_reply_cut_by_a_crash_is_finished_with_a_note_on_the_next_start(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(Reply(text=LONG, chunk_size=10, delay=0.05))
    chat = telegram.private_chat(1001)
    env = {
        **model_env(fake_model, db_path),
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_BASE_URL": telegram.root,
        "TELEGRAM_DRAFTS": "false",  # a message to edit (a draft does not outlive the process)
    }

    def previewed() -> bool:
        edits = [c for c in telegram.calls_to("editMessageText", 1001) if c.ok]
        return len(edits) >= 2

    async with killed_mid_reply(["run", "--platform", "telegram"], tmp_path, env, previewed):
        await eventually(lambda: bool(telegram.calls_to("getUpdates")))
        telegram.user_message(chat, "tell me a lot")
    (cut,) = telegram.bot_messages(1001)
    assert cut.text.endswith(MARKER), "the crash left the reply half-written"
    # The journal is written just after each edit lands, so a kill between the two leaves the previous
    # preview as the last text recorded: the message is finished with one of the texts it showed.
    shown = [v.removesuffix(MARKER).rstrip() for v in cut.versions if v.endswith(MARKER)]

    config = settings_for(
        fake_model.base_url,
        db_path,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_BASE_URL=telegram.root,
        TELEGRAM_DRAFTS=False,
    )
    async with open_engine(config) as engine, running_platforms(config, engine, ["telegram"]) as runners:
        await eventually(lambda: telegram.bot_messages(1001)[0].text.endswith(INTERRUPTED_NOTE))
        await eventually(lambda: runners[0].in_flight == 0)  # type: ignore[attr-defined]
    (finished,) = telegram.bot_messages(1001)
    assert finished.message_id == cut.message_id, "the same message is finished, not a new one"
    partial = finished.text.removesuffix(f"\n\n{INTERRUPTED_NOTE}")
    assert partial in shown[-2:], "finished with its last text (or the one before, killed mid-write)"
    assert MARKER not in finished.text and LONG.startswith(partial)
    assert await turns(db_path) == [("telegram:1001", "interrupted")]


async def test_terminal_reply_cut_by_a_crash_is_recorded_as_interrupted_on_the_next_start(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(Reply(text=LONG, chunk_size=10, delay=0.05))
    process = await start_chatbot(["chat"], tmp_path, model_env(fake_model, db_path), pipes=True)
    assert process.stdin is not None and process.stdout is not None
    printed = b""
    try:
        process.stdin.write(b"tell me a lot\n")
        await process.stdin.drain()
        deadline = time.monotonic() + 30
        while b"word80 " not in printed:  # well past the first save of the text shown (once a second)
            assert time.monotonic() < deadline, printed[-500:]
            printed += await asyncio.wait_for(process.stdout.read(4096), timeout=30)
    finally:
        process.kill()
        await process.wait()
    assert process.returncode == -9
    assert await turns_left(db_path) == [], "the killed process recorded no turn"

    config = settings_for(fake_model.base_url, db_path)
    out = io.StringIO()
    async with open_engine(config) as engine:
        await TerminalChat(engine, stdin=io.StringIO(""), stdout=out, interactive=True).run()
    assert CUT_BEFORE in out.getvalue()
    assert await turns(db_path) == [("console:default", "interrupted")]


async def turns_left(db_path: Path) -> list[tuple[Any, ...]]:
    store = SQLiteStore(db_path)
    await store.open()
    try:
        return [tuple(r) for r in await store.db.execute_fetchall("SELECT status FROM turns")]
    finally:
        await store.close()


async def test_slack_reply_cancelled_at_shutdown_is_finished_with_a_note_on_the_next_start(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    from tests.fakes.slack_api import BOT_TOKEN, BOT_USER, SIGNING_SECRET, FakeSlack, Message, mention

    slack = FakeSlack()
    await slack.start()
    keys = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.base_url, "SLACK_PORT": 0}
    config = settings_for(fake_model.base_url, db_path, SLACK_SIGNING_SECRET=SIGNING_SECRET, **keys)
    config = config.model_copy(update={"slack_edit_interval": 0.05})
    fake_model.queue(Reply(text=LONG, chunk_size=10, delay=0.05))

    def reply() -> Message | None:
        found = slack.in_thread("C0GENERAL", "100.000001")
        return found[0] if found else None

    try:
        async with open_engine(config) as engine, running_platforms(config, engine, ["slack"]) as runners:
            runner = runners[0]
            slack.app_url = f"http://127.0.0.1:{runner.port}/slack/events"  # type: ignore[attr-defined]
            await slack.post_event(mention(f"<@{BOT_USER}> tell me a lot", ts="100.000001"))
            await eventually(lambda: (m := reply()) is not None and len(m.versions) >= 3)
            await runner.dispatcher.drain(grace=0)  # type: ignore[attr-defined]  # shut down, reply unfinished
        cut = reply()
        # a native stream (chat.startStream) left open: streams carry no writing marker
        assert cut is not None and cut.streaming and MARKER not in cut.text
        shown = [v.rstrip() for v in cut.versions]

        async with open_engine(config) as engine, running_platforms(config, engine, ["slack"]) as runners:
            await eventually(lambda: (m := reply()) is not None and m.text.endswith(INTERRUPTED_NOTE))
            await eventually(lambda: runners[0].dispatcher.pending == 0)  # type: ignore[attr-defined]
        [finished] = slack.in_thread("C0GENERAL", "100.000001")
        partial = finished.text.removesuffix(f"\n\n{INTERRUPTED_NOTE}")
        # cancelled during an edit, the journal may hold the text shown one edit before
        assert finished.ts == cut.ts and partial in shown[-2:]
        assert await turns(db_path) == [("slack:T0TEAM:C0GENERAL:100.000001", "interrupted")]
    finally:
        await slack.stop()


async def test_discord_reply_cancelled_at_shutdown_is_finished_with_a_note_on_the_next_start(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    from tests.fakes.discord_api import DM_ID, FakeDiscord

    discord_fake = FakeDiscord()
    await discord_fake.start()
    config = settings_for(
        fake_model.base_url,
        db_path,
        DISCORD_BOT_TOKEN="discord-test-token-0123456789",
        DISCORD_API_BASE_URL=discord_fake.api_url,
        DISCORD_GATEWAY_URL=discord_fake.gateway_url,
        DISCORD_EDIT_INTERVAL=0.05,
        DISCORD_GUILD_READY_TIMEOUT=0.02,
    )
    fake_model.queue(Reply(text=LONG, chunk_size=10, delay=0.05))
    try:
        async with open_engine(config) as engine, running_platforms(config, engine, ["discord"]) as runners:
            await discord_fake.user_says("tell me a lot", channel_id=DM_ID)
            await eventually(lambda: any(len(m.texts) >= 3 for m in discord_fake.bot_messages(DM_ID)))
            await runners[0].dispatcher.drain(grace=0)  # type: ignore[attr-defined]  # reply unfinished
        (cut,) = discord_fake.bot_messages(DM_ID)
        assert cut.text.endswith(MARKER)
        shown = [t.removesuffix(MARKER).rstrip() for t in cut.texts if t.endswith(MARKER)]

        async with open_engine(config) as engine, running_platforms(config, engine, ["discord"]) as runners:
            await eventually(lambda: discord_fake.bot_messages(DM_ID)[0].text.endswith(INTERRUPTED_NOTE))
            await eventually(lambda: runners[0].dispatcher.pending == 0)  # type: ignore[attr-defined]
        [finished] = discord_fake.bot_messages(DM_ID)
        partial = finished.text.removesuffix(f"\n\n{INTERRUPTED_NOTE}")
        # cancelled during an edit, the journal may hold the text shown one edit before
        assert finished.id == cut.id and partial in shown[-2:]
        assert [status for _session, status in await turns(db_path)] == ["interrupted"]
    finally:
        await discord_fake.stop()


async def test_telegram_error_mid_stream_ends_the_reply_with_a_note_and_frees_the_chat(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(Reply(text=LONG, chunk_size=10, delay=0.05))
    chat = telegram.private_chat(1001)
    config = settings_for(
        fake_model.base_url,
        db_path,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_BASE_URL=telegram.root,
        TELEGRAM_DRAFTS=False,  # the edit path; the draft path: tests/test_telegram_drafts.py
    )
    async with open_engine(config) as engine, running_platforms(config, engine, ["telegram"]) as runners:
        telegram.user_message(chat, "tell me a lot")
        await eventually(lambda: len([c for c in telegram.calls_to("editMessageText", 1001) if c.ok]) >= 2)
        telegram.fail_next("editMessageText", status=502, description="Bad Gateway")
        await eventually(lambda: telegram.bot_messages(1001)[0].text.endswith(INTERRUPTED_NOTE))
        await eventually(lambda: len(fake_model.request_times) == 1, within=5.0)  # the model stream closed
        telegram.user_message(chat, "are you there?")
        await eventually(lambda: len(telegram.bot_messages(1001)) == 2 and runners[0].in_flight == 0)  # type: ignore[attr-defined]
    cut, answered = telegram.texts(1001)
    partial = cut.removesuffix(f"\n\n{INTERRUPTED_NOTE}")
    assert partial and LONG.startswith(partial) and MARKER not in cut
    assert answered.startswith("You said:") and answered.endswith("are you there?")
    assert [status for _session, status in await turns(db_path)] == ["interrupted", "ok"]
