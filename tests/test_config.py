"""Settings: .env.example lists every key, empty values mean unset, bots pick up explicit overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bots.registry import get_bot
from bots.settings import Settings, load_settings
from core.config import id_list
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_setting() -> None:
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    keys = {field.alias for field in Settings.model_fields.values()}
    assert keys == listed


def test_env_example_as_is_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings(ROOT / ".env.example")
    assert settings.context_tokens is None and settings.temperature is None
    assert settings.openai_base_url == "https://api.openai.com/v1"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        settings.api_key()


def test_explicit_settings_override_the_bot(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("CHATBOT_MODEL=llama3.1:8b\nCHATBOT_TEMPERATURE=0.1\nCHATBOT_TRIM_STRATEGY=turns\n")
    bot = get_bot("orbit").with_settings(load_settings(env))
    assert bot.model_name == "llama3.1:8b"
    assert bot.window == 131_072  # from the table
    assert bot.params.temperature == 0.1 and bot.params.max_tokens == 512  # the rest stays the bot's
    assert bot.trim.strategy == "turns"


def test_context_tokens_setting_wins_over_the_table(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("CHATBOT_MODEL=gpt-4o\nCHATBOT_CONTEXT_TOKENS=4096\n")
    assert get_bot("default").with_settings(load_settings(env)).window == 4096


def test_unknown_bot_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="choose one of default, orbit"):
        get_bot("nope")


def test_id_list() -> None:
    assert id_list(" 1, 2 3,,") == {"1", "2", "3"}
    assert id_list("") == frozenset()


def test_secrets_do_not_show_in_repr(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("OPENAI_API_KEY=sk-very-secret\nTELEGRAM_BOT_TOKEN=123:ABCsecret\n")
    settings = load_settings(env)
    assert "sk-very-secret" not in repr(settings) and "ABCsecret" not in repr(settings)
