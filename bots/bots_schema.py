"""The shape of the bots file (``bots.toml``), one pydantic model per section, and its conversion to
:class:`core.bot_profile.BotProfile` in one place (:func:`to_profile`).

A key of :class:`BotSection` (or of its ``params`` / ``trim`` sections) whose name is a field of
``BotProfile`` (of ``ModelParams`` / ``TrimPolicy``) is carried over by name: adding a profile field to the
file is one line here. Every model forbids unknown keys, so a typo is an error rather than a silent
default. docs/bots-file.md documents every key.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from core.bot_profile import BotProfile, Mode, ModelParams, TrimPolicy
from features.tools.config import ToolsConfig

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
PLATFORMS = ("telegram", "slack", "discord")


class Section(BaseModel):
    """Every section: unknown keys are errors; values keep their TOML types (no "1" for 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _env_name(value: str | None) -> str | None:
    """A credential key holds the NAME of an environment variable, never its value."""
    if value is not None and not ENV_NAME.fullmatch(value):
        raise ValueError(
            "must be the name of an environment variable (like ORBIT_SLACK_TOKEN), not a value: "
            "put the secret in the environment and its name here"
        )
    return value


class ParamsSection(Section):
    """Sampling parameters (``[bots.<name>.params]``), the fields of ``ModelParams``."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)


class TrimSection(Section):
    """How history is cut to fit (``[bots.<name>.trim]``), the fields of ``TrimPolicy``."""

    strategy: Literal["sliding", "turns", "summary"] | None = None
    threshold: float | None = Field(default=None, gt=0.1, le=1)
    max_turns: int | None = Field(default=None, gt=0)
    summary_target: float | None = Field(default=None, gt=0, lt=1)
    safety_margin: float | None = Field(default=None, ge=0, lt=1)


class LimitsSection(Section):
    """Usage limits of this bot (``[bots.<name>.limits]``); 0 turns one off. Unset: the environment's."""

    messages_per_minute: int | None = Field(default=None, ge=0)
    user_daily_tokens: int | None = Field(default=None, ge=0)
    bot_daily_tokens: int | None = Field(default=None, ge=0)


class GuardrailsSection(Section):
    """The guardrails of this bot (``[bots.<name>.guardrails]``); rules come from ``<data>/guardrails.json``."""

    enabled: bool | None = None
    model_check: bool | None = None


class PlatformSection(Section):
    """One platform a bot runs on: the environment variables holding its credentials, and its admins
    (the platform's own user ids: ``1001`` on Telegram, ``U123ABC`` on Slack, a snowflake on Discord)."""

    token_env: str | None = None
    app_token_env: str | None = None  # Slack Socket Mode
    signing_secret_env: str | None = None  # Slack HTTP mode
    admins: list[Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=list)

    _names = field_validator("token_env", "app_token_env", "signing_secret_env")(_env_name)

    def env_names(self) -> dict[str, str]:
        """``{key: variable name}`` of the credentials this section names."""
        keys = ("token_env", "app_token_env", "signing_secret_env")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


class SlackSection(PlatformSection):
    """Slack: a bot token, and an app token (Socket Mode) or a signing secret (HTTP)."""


class TelegramSection(PlatformSection):
    """Telegram: one bot token."""

    @model_validator(mode="after")
    def _only_a_token(self) -> TelegramSection:
        if self.app_token_env or self.signing_secret_env:
            raise ValueError("Telegram takes only token_env")
        return self


class DiscordSection(TelegramSection):
    """Discord: one bot token."""


class PlatformsSection(Section):
    """``[bots.<name>.platforms.<platform>]``: where the bot runs. An unknown platform is an error."""

    telegram: TelegramSection | None = None
    slack: SlackSection | None = None
    discord: DiscordSection | None = None

    def items(self) -> list[tuple[str, PlatformSection]]:
        return [(name, section) for name in PLATFORMS if (section := getattr(self, name)) is not None]


class ModeSection(Section):
    """A persona (``[bots.<name>.modes.<mode>]``): a system prompt, optionally its own model and params."""

    description: str = ""
    system_prompt: str | None = None
    system_prompt_file: str | None = None
    model: str | None = None
    params: ParamsSection = Field(default_factory=ParamsSection)

    @model_validator(mode="after")
    def _one_prompt(self) -> ModeSection:
        _check_one_prompt(self.system_prompt, self.system_prompt_file)
        return self


class BotSection(Section):
    """One bot (``[bots.<name>]``). Keys named like a ``BotProfile`` field are carried over by name."""

    enabled: bool = True
    description: str | None = None
    greeting: str | None = None
    system_prompt: str | None = None
    system_prompt_file: str | None = None
    model: str | None = None
    summary_model: str | None = None
    context_tokens: int | None = Field(default=None, gt=0)
    max_input_chars: int | None = Field(default=None, gt=0)
    models: list[Annotated[str, StringConstraints(min_length=1)]] | None = None
    switch_admins_only: bool | None = None
    session_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]*$")
    data: str | None = None  # folder of guardrails.json and eval_cases.json; default <bots file dir>/<name>
    knowledge: str | None = None  # folder ``chatbot ingest --bot <name>`` reads when given no path
    params: ParamsSection = Field(default_factory=ParamsSection)
    trim: TrimSection = Field(default_factory=TrimSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    guardrails: GuardrailsSection = Field(default_factory=GuardrailsSection)
    platforms: PlatformsSection = Field(default_factory=PlatformsSection)
    modes: dict[Name, ModeSection] = Field(default_factory=dict)
    # whether the model sees images (docs/media.md); unset: guessed from the model's name
    vision: bool | None = None
    # Slack assistant threads offer these when a thread opens (docs/slack.md; Slack takes up to four)
    suggested_prompts: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None, max_length=4
    )
    # MCP servers, their allowed tools and the per-turn limits (docs/tools.md)
    tools: ToolsConfig | None = None

    @model_validator(mode="after")
    def _one_prompt(self) -> BotSection:
        _check_one_prompt(self.system_prompt, self.system_prompt_file)
        return self

    @field_validator("modes", "models")
    @classmethod
    def _not_default(cls, names: Any) -> Any:
        if names and "default" in names:  # `/mode default` and `/model default` go back to the bot's own
            raise ValueError("'default' is reserved: /mode default and /model default mean the bot's own")
        if isinstance(names, list) and len(set(names)) != len(names):
            raise ValueError("a model is listed twice")
        return names


class BotsFileModel(Section):
    """The whole file: ``[bots.<name>]`` tables (a name declared twice is a TOML error)."""

    bots: dict[Name, BotSection]

    @field_validator("bots")
    @classmethod
    def _some_bot(cls, bots: dict[str, BotSection]) -> dict[str, BotSection]:
        if not bots:
            raise ValueError("define at least one bot ([bots.<name>])")
        return bots


def _check_one_prompt(inline: str | None, path: str | None) -> None:
    if (inline is None) == (path is None):
        raise ValueError("give exactly one of system_prompt (the text) and system_prompt_file (a path)")


def _carried(section: BaseModel, target: type[Any]) -> dict[str, Any]:
    """The section's set values whose keys are fields of the ``target`` dataclass (lists as tuples)."""
    names = {f.name for f in fields(target)}
    values = {}
    for key in type(section).model_fields:
        value = getattr(section, key)
        if key in names and value is not None:
            values[key] = tuple(value) if isinstance(value, list) else value
    return values


def to_profile(
    name: str, section: BotSection, system_prompt: str, mode_prompts: dict[str, str], admins: frozenset[str]
) -> BotProfile:
    """The :class:`BotProfile` a bot section defines, its prompts already read (files resolved)."""
    modes = tuple(
        Mode(
            name=mode_name,
            system_prompt=mode_prompts[mode_name],
            description=mode.description,
            model=mode.model,
            params=tuple(_carried(mode.params, ModelParams).items()),
        )
        for mode_name, mode in section.modes.items()
    )
    carried = _carried(section, BotProfile)
    return BotProfile(
        **carried
        | {
            "name": name,
            "system_prompt": system_prompt,
            "params": ModelParams(**_carried(section.params, ModelParams)),
            "trim": TrimPolicy(**_carried(section.trim, TrimPolicy)),
            "modes": modes,
            "admins": admins,
        }
    )
