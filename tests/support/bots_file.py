"""What the bots-file tests (tests/test_chat_choice.py, test_several_bots.py, test_bots_reload.py) share:
Telegram paced fast enough for a test."""

from __future__ import annotations

import pytest

import adapters.telegram.runner as telegram_runner
from adapters.telegram import TelegramTuning

FAST_TELEGRAM = TelegramTuning(
    private_edit_interval=0.05, typing_interval=0.05, poll_timeout=1.0, drain_grace=5.0
)


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Autouse in every module that imports it: the bots the module starts edit and poll at test speed."""
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", FAST_TELEGRAM)
