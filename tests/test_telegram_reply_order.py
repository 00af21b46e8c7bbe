"""Replies in one Telegram chat appear in the order the messages arrived, through the real adapter (PTB
against the fake Bot API), even when later answers are generated faster than earlier ones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import adapters.telegram.runner as telegram_runner
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram_adapter import FAST, running

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", FAST)


def answer(body: dict[str, Any]) -> Reply:
    n = int(str(body["messages"][-1]["content"]).split()[-1])
    # a random-ish but deterministic length and pace per reply: later answers often come faster
    return Reply(text=f"answer {n} " + "word " * (5 + n * 7 % 11), chunk_size=6, delay=0.004 * (n * 5 % 7))


async def test_replies_in_one_telegram_chat_appear_in_arrival_order(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.default = answer
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path, CHATBOT_RATE_LIMIT_PER_MINUTE=0) as (runner, _engine):
        for n in range(20):
            telegram.user_message(chat, f"message {n}")
            await asyncio.sleep(0.05)
        await telegram.wait_for(
            lambda: len(telegram.bot_messages(1001)) >= 20 and runner.in_flight == 0, within=60.0
        )
    replies = sorted(telegram.bot_messages(1001), key=lambda m: m.message_id)
    number = {m.message_id: int(m.text.split()[1]) for m in replies}
    assert sorted(number.values()) == list(range(20))
    # the position in the API's call log at which each message appeared, and at which it last changed
    changes = [c for c in telegram.calls if c.ok and c.method in ("sendMessage", "editMessageText")]
    sends = iter(m.message_id for m in replies)  # the fake numbers messages in the order it got them
    last_change: dict[int, int] = {}
    for position, call in enumerate(changes):
        message_id = next(sends) if call.method == "sendMessage" else call.params["message_id"]
        last_change[message_id] = position
    first_shown = [number[m.message_id] for m in replies]
    final_shown = [number[mid] for mid in sorted(number, key=last_change.__getitem__)]
    assert first_shown == list(range(20)), "each reply's first message in arrival order"
    assert final_shown == list(range(20)), "each reply's final text in arrival order"
