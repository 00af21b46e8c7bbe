"""What defines a bot: its system prompt, model and parameters, trimming policy and limits.

Bots themselves live in ``bots/``; this module only holds the shape, so the core can run any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from core.config import EngineSettings, TrimStrategy
from core.model_vision import model_sees_images
from core.model_windows import DEFAULT_CONTEXT_TOKENS, known_context_window

T = TypeVar("T")


def _pick(override: T | None, default: T) -> T:
    return default if override is None else override


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Sampling parameters, defaulting to the ranges the article recommends for chat bots."""

    temperature: float = 0.5
    max_tokens: int = 1024
    top_p: float = 0.9
    frequency_penalty: float = 0.2


@dataclass(frozen=True, slots=True)
class TrimPolicy:
    """How history is cut to fit the context window.

    ``threshold``: the prompt may use at most this share of the window (the article's 80%).
    ``max_turns``: for the ``turns`` strategy, how many user/assistant exchanges to keep.
    ``summary_target``: for ``summary``, the share of the budget history is cut down to when it overflows,
    so a summary call happens now and then rather than on every turn.
    ``safety_margin``: share added to every token estimate, for tokenisers we can only approximate.
    """

    strategy: TrimStrategy = "sliding"
    threshold: float = 0.8
    max_turns: int = 20
    summary_target: float = 0.5
    safety_margin: float = 0.05


@dataclass(frozen=True, slots=True)
class Mode:
    """A persona a chat can switch to with ``/mode``: its own system prompt, and optionally its own model
    and sampling parameters (``params`` names :class:`ModelParams` fields; the rest stay the bot's)."""

    name: str
    system_prompt: str
    description: str = ""
    model: str | None = None
    params: tuple[tuple[str, float | int], ...] = ()


@dataclass(frozen=True, slots=True)
class BotProfile:
    """One bot. ``model`` and ``context_tokens`` of ``None`` defer to the settings; ``vision`` of ``None``
    to the model's name (:mod:`core.model_vision`)."""

    name: str
    system_prompt: str
    description: str = ""
    greeting: str = "Hi! Ask me anything."
    # offered as one-click prompts where a platform has them (Slack's assistant threads)
    suggested_prompts: tuple[str, ...] = ()
    model: str | None = None
    summary_model: str | None = None
    context_tokens: int | None = None
    params: ModelParams = field(default_factory=ModelParams)
    trim: TrimPolicy = field(default_factory=TrimPolicy)
    max_input_chars: int = 16_000
    vision: bool | None = None
    # the bot's tools (MCP servers, allowlists, limits) for features/tools: ToolsConfig's data, or a ToolsConfig
    tools: Any = None
    # Per-chat choice (``/mode``, ``/model``): the personas and models a chat may pick, who may switch
    # (``admins`` are platform-qualified user ids, ``telegram:1001``), and whether only they may.
    modes: tuple[Mode, ...] = ()
    models: tuple[str, ...] = ()
    admins: frozenset[str] = frozenset()
    switch_admins_only: bool = False

    def with_settings(self, settings: EngineSettings) -> BotProfile:
        """This bot with the deployment's explicit settings applied on top."""
        params = replace(
            self.params,
            temperature=_pick(settings.temperature, self.params.temperature),
            max_tokens=_pick(settings.max_tokens, self.params.max_tokens),
            top_p=_pick(settings.top_p, self.params.top_p),
            frequency_penalty=_pick(settings.frequency_penalty, self.params.frequency_penalty),
        )
        trim = replace(
            self.trim,
            strategy=settings.trim_strategy or self.trim.strategy,
            threshold=_pick(settings.trim_threshold, self.trim.threshold),
            max_turns=_pick(settings.max_turns, self.trim.max_turns),
        )
        model = settings.model or self.model or "gpt-4o-mini"
        window = settings.context_tokens or self.context_tokens or known_context_window(model)
        return replace(
            self,
            model=model,
            summary_model=settings.summary_model or self.summary_model or model,
            context_tokens=window or DEFAULT_CONTEXT_TOKENS,
            params=params,
            trim=trim,
        )

    def mode(self, name: str | None) -> Mode | None:
        """The mode called ``name`` (any case), or ``None``."""
        if name is None:
            return None
        return next((mode for mode in self.modes if mode.name == name.lower()), None)

    def choosing(self, mode: str | None, model: str | None) -> BotProfile:
        """This bot as one chat chose it: the mode's prompt, model and parameters, then the chosen model.
        A name the bot no longer offers (the bots file changed) is ignored."""
        bot = self
        chosen = self.mode(mode)
        if chosen is not None:
            bot = replace(
                bot,
                system_prompt=chosen.system_prompt,
                model=chosen.model or bot.model,
                params=replace(bot.params, **dict(chosen.params)),  # type: ignore[arg-type]  # names checked by the schema
            )
        if model is not None and model in self.models:
            bot = replace(bot, model=model)
        return bot

    @property
    def model_name(self) -> str:
        return self.model or "gpt-4o-mini"

    @property
    def sees_images(self) -> bool:
        """Whether images go to the model as content parts: the bot's ``vision``, else by model name."""
        return self.vision if self.vision is not None else model_sees_images(self.model_name)

    @property
    def window(self) -> int:
        return self.context_tokens or known_context_window(self.model_name) or DEFAULT_CONTEXT_TOKENS
