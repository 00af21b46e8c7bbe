"""The one typed settings object, read from the environment and ``./.env``.

Every key is listed, with a comment, in ``.env.example``. Secrets are ``SecretStr`` so they never show in a
repr, a log line or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
TrimStrategy = Literal["sliding", "turns", "summary"]


class Settings(BaseSettings):
    """Deployment settings. A bot definition supplies defaults; a key set here overrides it."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

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
    log_file: Path | None = Field(default=Path("data/chatbot.log"), alias="CHATBOT_LOG_FILE")
    log_level: str = Field(default="INFO", alias="CHATBOT_LOG_LEVEL")
    bot: str = Field(default="default", alias="CHATBOT_BOT")
    tiktoken_download: bool = Field(default=True, alias="CHATBOT_TIKTOKEN_DOWNLOAD")

    # Guardrails, usage limits, review, privacy (production features).
    guardrails: bool = Field(default=True, alias="CHATBOT_GUARDRAILS")
    guard_model_check: bool = Field(default=False, alias="CHATBOT_GUARD_MODEL_CHECK")
    guard_model: str | None = Field(default=None, alias="CHATBOT_GUARD_MODEL")
    max_message_chars: int = Field(default=8000, gt=0, alias="CHATBOT_MAX_MESSAGE_CHARS")
    rate_limit_per_minute: int = Field(default=10, ge=0, alias="CHATBOT_RATE_LIMIT_PER_MINUTE")
    user_daily_tokens: int = Field(default=200_000, ge=0, alias="CHATBOT_USER_DAILY_TOKENS")
    bot_daily_tokens: int = Field(default=5_000_000, ge=0, alias="CHATBOT_BOT_DAILY_TOKENS")
    prices: str = Field(default="", alias="CHATBOT_PRICES")
    json_logs: bool = Field(default=False, alias="CHATBOT_JSON_LOGS")
    review_phrases: str = Field(default="", alias="CHATBOT_REVIEW_PHRASES")
    metrics_port: int | None = Field(default=None, alias="CHATBOT_METRICS_PORT")
    metrics_host: str = Field(default="127.0.0.1", alias="CHATBOT_METRICS_HOST")
    retention_days: int = Field(default=0, ge=0, alias="CHATBOT_RETENTION_DAYS")

    # Knowledge base (retrieval-augmented answers).
    embedding_model: str = Field(default="text-embedding-3-small", alias="CHATBOT_EMBEDDING_MODEL")
    embedding_base_url: str | None = Field(default=None, alias="CHATBOT_EMBEDDING_BASE_URL")
    embedding_api_key: SecretStr | None = Field(default=None, alias="CHATBOT_EMBEDDING_API_KEY")
    embedding_max_tokens: int = Field(default=8191, gt=0, alias="CHATBOT_EMBEDDING_MAX_TOKENS")
    knowledge_top_k: int = Field(default=4, gt=0, alias="CHATBOT_KNOWLEDGE_TOP_K")
    knowledge_min_score: float = Field(default=0.3, alias="CHATBOT_KNOWLEDGE_MIN_SCORE")
    chunk_tokens: int = Field(default=300, gt=20, alias="CHATBOT_CHUNK_TOKENS")
    chunk_overlap: int = Field(default=40, ge=0, alias="CHATBOT_CHUNK_OVERLAP")

    # Telegram.
    telegram_bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_base_url: str = Field(default="https://api.telegram.org", alias="TELEGRAM_BASE_URL")
    telegram_webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_webhook_listen: str = Field(default="0.0.0.0", alias="TELEGRAM_WEBHOOK_LISTEN")
    telegram_webhook_port: int = Field(default=8443, alias="TELEGRAM_WEBHOOK_PORT")
    telegram_allowed_ids: str = Field(default="", alias="TELEGRAM_ALLOWED_IDS")
    telegram_group_per_user: bool = Field(default=False, alias="TELEGRAM_GROUP_PER_USER")

    # Slack.
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_port: int = Field(default=3000, alias="SLACK_PORT")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_allowed_channels: str = Field(default="", alias="SLACK_ALLOWED_CHANNELS")
    slack_allowed_users: str = Field(default="", alias="SLACK_ALLOWED_USERS")
    slack_thread_followups: bool = Field(default=True, alias="SLACK_THREAD_FOLLOWUPS")
    slack_edit_interval: float = Field(default=1.0, gt=0, alias="SLACK_EDIT_INTERVAL")

    # Discord.
    discord_bot_token: SecretStr | None = Field(default=None, alias="DISCORD_BOT_TOKEN")
    discord_api_base_url: str | None = Field(default=None, alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    discord_allowed_guilds: str = Field(default="", alias="DISCORD_ALLOWED_GUILDS")
    discord_allowed_channels: str = Field(default="", alias="DISCORD_ALLOWED_CHANNELS")
    discord_allowed_users: str = Field(default="", alias="DISCORD_ALLOWED_USERS")
    discord_allowed_roles: str = Field(default="", alias="DISCORD_ALLOWED_ROLES")
    discord_thread_followups: bool = Field(default=True, alias="DISCORD_THREAD_FOLLOWUPS")
    discord_message_content: bool = Field(default=False, alias="DISCORD_MESSAGE_CONTENT")
    discord_edit_interval: float = Field(default=1.0, gt=0, alias="DISCORD_EDIT_INTERVAL")
    discord_guild_ready_timeout: float = Field(default=2.0, ge=0, alias="DISCORD_GUILD_READY_TIMEOUT")

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

    def embedding_url(self) -> str:
        """The embeddings server: ``CHATBOT_EMBEDDING_BASE_URL``, else the chat server."""
        return self.embedding_base_url or self.openai_base_url

    def embedding_key(self) -> str:
        """The key for the embeddings server: ``CHATBOT_EMBEDDING_API_KEY``, else the chat key."""
        if self.embedding_api_key is not None and self.embedding_api_key.get_secret_value():
            return self.embedding_api_key.get_secret_value()
        if self.openai_api_key is not None and self.openai_api_key.get_secret_value():
            return self.openai_api_key.get_secret_value()
        if self.embedding_url().rstrip("/") == OPENAI_DEFAULT_URL:
            raise ConfigError(
                "no API key for OpenAI embeddings: set CHATBOT_EMBEDDING_API_KEY or OPENAI_API_KEY, "
                "or CHATBOT_EMBEDDING_BASE_URL to a local server."
            )
        return "not-needed"


def id_list(value: str) -> frozenset[str]:
    """A comma- or space-separated list of ids (an allowlist setting) as a set; empty means everyone."""
    return frozenset(part for part in value.replace(",", " ").split() if part)


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Read the settings, turning a validation failure into one actionable line."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        raise ConfigError(f"{key}: {first.get('msg', 'invalid value')} (see .env.example)") from None
