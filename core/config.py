"""Settings, read from the environment and ``./.env``: the engine's here, and the base every other part's
settings build on.

Each part declares the keys it reads beside its code (``adapters/<platform>/settings.py``,
``features/<feature>/settings.py``); ``bots/settings.py`` puts them together into the one object the
``chatbot`` command loads. Every key is listed, with a comment, in ``.env.example``. Secrets are
``SecretStr`` so they never show in a repr, a log line or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
TrimStrategy = Literal["sliding", "turns", "summary"]


class SettingsBase(BaseSettings):
    """How every settings class reads its keys: environment first, then ``./.env``; unknown keys ignored."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )


class EngineSettings(SettingsBase):
    """The engine's settings: the model server, model parameters, trimming, storage and logs. A bot
    definition supplies defaults; a key set here overrides it."""

    # The model server (any OpenAI-compatible one).
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str = Field(default=OPENAI_DEFAULT_URL, alias="OPENAI_BASE_URL")
    model: str | None = Field(default=None, alias="CHATBOT_MODEL")
    context_tokens: int | None = Field(default=None, gt=0, alias="CHATBOT_CONTEXT_TOKENS")
    request_timeout: float = Field(default=60.0, gt=0, alias="CHATBOT_REQUEST_TIMEOUT")
    max_retries: int = Field(default=3, ge=0, le=10, alias="CHATBOT_MAX_RETRIES")
    first_token_timeout: float = Field(default=15.0, gt=0, alias="CHATBOT_FIRST_TOKEN_TIMEOUT")
    stall_timeout: float = Field(default=20.0, gt=0, alias="CHATBOT_STALL_TIMEOUT")
    reply_timeout: float = Field(default=180.0, gt=0, alias="CHATBOT_REPLY_TIMEOUT")
    max_concurrent_calls: int | None = Field(default=None, ge=0, alias="CHATBOT_MAX_CONCURRENT_CALLS")
    discover_window: bool = Field(default=True, alias="CHATBOT_DISCOVER_WINDOW")
    max_tokens_share: float = Field(default=0.25, gt=0, lt=1, alias="CHATBOT_MAX_TOKENS_SHARE")

    # Model parameters (unset: the bot definition's values).
    temperature: float | None = Field(default=None, ge=0, le=2, alias="CHATBOT_TEMPERATURE")
    max_tokens: int | None = Field(default=None, gt=0, alias="CHATBOT_MAX_TOKENS")
    top_p: float | None = Field(default=None, gt=0, le=1, alias="CHATBOT_TOP_P")
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2, alias="CHATBOT_FREQUENCY_PENALTY")

    # Trimming (unset: the bot definition's values).
    trim_strategy: TrimStrategy | None = Field(default=None, alias="CHATBOT_TRIM_STRATEGY")
    trim_threshold: float | None = Field(default=None, gt=0.1, le=1, alias="CHATBOT_TRIM_THRESHOLD")
    max_turns: int | None = Field(default=None, gt=0, alias="CHATBOT_MAX_TURNS")
    summary_model: str | None = Field(default=None, alias="CHATBOT_SUMMARY_MODEL")

    # Storage and logs.
    db_path: Path = Field(default=Path("data/chatbot.db"), alias="CHATBOT_DB")
    # postgresql://user:password@host:5432/db: PostgreSQL for several workers (core/storage_url.py); unset:
    # SQLite at CHATBOT_DB. Secret, because the URL may hold the password.
    database_url: SecretStr | None = Field(default=None, alias="CHATBOT_DATABASE_URL")
    log_file: Path | None = Field(default=Path("data/chatbot.log"), alias="CHATBOT_LOG_FILE")
    log_level: str = Field(default="INFO", alias="CHATBOT_LOG_LEVEL")
    json_logs: bool = Field(default=False, alias="CHATBOT_JSON_LOGS")
    bot: str = Field(default="default", alias="CHATBOT_BOT")
    tiktoken_download: bool = Field(default=True, alias="CHATBOT_TIKTOKEN_DOWNLOAD")

    def database(self) -> str | None:
        """The PostgreSQL URL of ``CHATBOT_DATABASE_URL``, or ``None`` for SQLite at ``db_path``."""
        url = self.database_url.get_secret_value().strip() if self.database_url is not None else ""
        return url or None

    def api_key(self) -> str:
        """The key to send to the model server; local servers accept any placeholder."""
        if self.openai_api_key is not None and self.openai_api_key.get_secret_value():
            return self.openai_api_key.get_secret_value()
        if self.openai_base_url.rstrip("/") == OPENAI_DEFAULT_URL:
            raise ConfigError(
                "OPENAI_API_KEY is not set: put it in .env (see .env.example), "
                "or set OPENAI_BASE_URL to a local OpenAI-compatible server."
            )
        return "not-needed"


S = TypeVar("S", bound=BaseSettings)


def id_list(value: str) -> frozenset[str]:
    """A comma- or space-separated list of ids (an allowlist setting) as a set; empty means everyone."""
    return frozenset(part for part in value.replace(",", " ").split() if part)


def load_settings(kind: type[S], env_file: str | Path | None = ".env") -> S:
    """Read the settings, turning a validation failure into one actionable line."""
    try:
        return kind(_env_file=env_file)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        raise ConfigError(f"{key}: {first.get('msg', 'invalid value')} (see .env.example)") from None
