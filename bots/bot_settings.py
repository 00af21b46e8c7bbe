"""One bot's settings: the deployment's, with what the bots file says for that bot (its limits, guardrails
and platform credentials) put in.

Precedence, as the README states it: a key set in the environment (or ``.env``) wins over the bots file,
which wins over the built-in defaults. Credentials are the exception by design: a bot that names its own
variables (``token_env``) uses them, so two bots never share a platform account by accident; a platform the
file lists without ``token_env`` uses the usual variable (``TELEGRAM_BOT_TOKEN``...).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from bots.bots_file import BotEntry, BotsConfig, environment
from bots.settings import Settings
from core.errors import ConfigError

# (platform, bots-file key) -> the settings field it fills
CREDENTIALS = {
    ("telegram", "token_env"): "telegram_bot_token",
    ("slack", "token_env"): "slack_bot_token",
    ("slack", "app_token_env"): "slack_app_token",
    ("slack", "signing_secret_env"): "slack_signing_secret",
    ("discord", "token_env"): "discord_bot_token",
}
# bots-file key of a section -> settings field
LIMITS = {
    "messages_per_minute": "rate_limit_per_minute",
    "user_daily_tokens": "user_daily_tokens",
    "bot_daily_tokens": "bot_daily_tokens",
}
GUARDRAILS = {"enabled": "guardrails", "model_check": "guard_model_check"}


def settings_for(entry: BotEntry, settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """``settings`` for running ``entry``: its file values under the environment's, its own credentials."""
    environ = environment() if environ is None else environ
    explicit = settings.model_fields_set
    update: dict[str, object] = {"bot": entry.name}
    for section, names in ((entry.limits, LIMITS), (entry.guardrails, GUARDRAILS)):
        for key, field in names.items():
            value = getattr(section, key)
            if value is not None and field not in explicit:
                update[field] = value
    for platform, where in entry.platforms.items():
        for key, env in where.env_names().items():
            value = environ.get(env, "")
            if value:
                update[CREDENTIALS[(platform, key)]] = SecretStr(value)
    return settings.model_copy(update=update)


def missing_credentials(
    entry: BotEntry, platform: str, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The variables ``entry`` names for ``platform`` that are not set."""
    environ = environment() if environ is None else environ
    where = entry.platforms.get(platform)
    if where is None:
        return []
    return [env for env in where.env_names().values() if not environ.get(env)]


def file_secrets(config: BotsConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of every credential variable the file names, so that logs redact them."""
    environ = environment() if environ is None else environ
    values = []
    for entry in config.bots.values():
        for where in entry.platforms.values():
            for env in where.env_names().values():
                value = environ.get(env, "")
                if value:
                    values.append(value)
                    if ":" in value:  # Telegram tokens are "<bot id>:<secret>"
                        values.append(value.split(":", 1)[1])
    return values


def require_credentials(entry: BotEntry, platform: str, environ: Mapping[str, str] | None = None) -> None:
    """A clear error when a bot's platform names variables that are not set."""
    missing = missing_credentials(entry, platform, environ)
    if missing:
        raise ConfigError(
            f"bot {entry.name} on {platform}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            "not set (the bots file names it; put the value in the environment or .env)"
        )
