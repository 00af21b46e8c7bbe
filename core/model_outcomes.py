"""What the engine makes of how a model call ended: the words the user sees, the turn's status, and the
window a server's overflow taught us.

- ``finish_reason == "length"``: the reply is kept and shown whole, with a notice that it was cut short
  (status ``length``, stored complete: the user saw it, the model may continue it);
- ``finish_reason == "content_filter"``: a message of its own (status ``filtered``, the question left
  incomplete: it would be filtered again);
- :class:`~core.errors.ModelTimeout`: which time limit ran out, in words, with its number of seconds;
- :class:`~core.errors.ContextTooLong` with the server's window: the bot adopts that window, with
  ``max_tokens`` capped to the same share of it that start-up uses (:func:`max_tokens_cap`).
"""

from __future__ import annotations

from dataclasses import replace

from core.bot_profile import BotProfile
from core.errors import ContextTooLong, ModelTimeout

DEFAULT_MAX_TOKENS_SHARE = 0.25  # CHATBOT_MAX_TOKENS_SHARE's default: of the window, at most, for a reply

LENGTH_NOTICE = "\n\n✂️ The reply hit the length limit. Ask me to continue, or ask for a shorter answer."
FILTERED = "⚠️ The model's content filter stopped this reply."

_TIMEOUT_BEFORE_TEXT = {
    "first_token": "⚠️ The model did not start answering within {limit:g} s. Please try again in a moment.",
    "stall": "⚠️ The model stopped answering for {limit:g} s. Please try again in a moment.",
    "total": "⚠️ The model did not finish answering within {limit:g} s. Please try again in a moment.",
}
_TIMEOUT_AFTER_TEXT = {
    "first_token": "\n\n⚠️ The reply was interrupted: the model did not answer within {limit:g} s. "
    "Please try again.",
    "stall": "\n\n⚠️ The reply was interrupted: the model stopped sending for {limit:g} s. Please try again.",
    "total": "\n\n⚠️ The reply was cut off: it took longer than {limit:g} s. Please try again, or ask for a "
    "shorter answer.",
}


def timeout_message(exc: ModelTimeout, *, after_text: bool) -> str | None:
    """The words for a time limit that ran out, or ``None`` when the error does not say which one."""
    table = _TIMEOUT_AFTER_TEXT if after_text else _TIMEOUT_BEFORE_TEXT
    template = table.get(exc.phase)
    if template is None or exc.limit <= 0:
        return None
    return template.format(limit=exc.limit)


def filtered_message(after_text: bool) -> str:
    """The content-filter message, on its own or after the text already shown."""
    return "\n\n" + FILTERED if after_text else FILTERED


def max_tokens_cap(window: int, share: float = DEFAULT_MAX_TOKENS_SHARE) -> int:
    """The most tokens a reply may ask for in a ``window``-token context, leaving the rest for the prompt."""
    return max(16, int(window * share))


def adopt_window(bot: BotProfile, window: int, share: float = DEFAULT_MAX_TOKENS_SHARE) -> BotProfile:
    """``bot`` budgeting for a ``window``-token context, its ``max_tokens`` capped to ``share`` of it."""
    max_tokens = min(bot.params.max_tokens, max_tokens_cap(window, share))
    return replace(bot, context_tokens=window, params=replace(bot.params, max_tokens=max_tokens))


def smaller_window(exc: ContextTooLong, bot: BotProfile) -> int | None:
    """The server's window from an overflow, when it is smaller than the one ``bot`` budgets for."""
    if exc.window is not None and 0 < exc.window < bot.window:
        return exc.window
    return None


def reported_prompt(exc: ContextTooLong, max_tokens: int, estimate: int) -> int | None:
    """The prompt's size to learn the token correction from, out of an overflow's numbers, or ``None``.

    ``prompt_tokens`` is exact. ``requested`` is the prompt alone on some servers (LM Studio's ``n_keep``) and
    prompt plus ``max_tokens`` on others (llama-cpp-python), so ``requested - max_tokens`` is a lower bound of
    the prompt: it is used only when it exceeds our ``estimate``, so the correction moves towards the truth
    and never past it.
    """
    if exc.prompt_tokens:
        return exc.prompt_tokens
    if exc.requested is not None and exc.requested - max_tokens > estimate:
        return exc.requested - max_tokens
    return None
