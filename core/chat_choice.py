"""Per-chat choice: ``/mode`` (a persona) and ``/model`` list what the bot offers and switch it for the
current conversation. The choice is kept in the store (``ChatChoice``), survives restarts and ``/reset``,
and applies from the next turn on; the history is kept, so the new persona or model answers with it.

When the bot says ``switch_admins_only``, only its admins (platform-qualified user ids) may switch; anyone
may list. A name the bot no longer offers (its bots file changed) falls back to the bot's own setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.bot_profile import BotProfile
from core.commands import Command, CommandHandler
from core.incoming import IncomingMessage
from core.store import ChatChoice

if TYPE_CHECKING:
    from core.conversation import ConversationEngine

DEFAULT = "default"  # the name that goes back to the bot's own prompt or model
ADMINS_ONLY = "Only this bot's admins can switch the {what} here."
KEPT = "Our conversation so far is kept."


def choice_commands(engine: ConversationEngine) -> list[Command]:
    """``/mode`` when the bot offers modes, ``/model`` when it offers models."""
    found = []
    if engine.bot.modes:
        found.append(Command("mode", "Show or switch my persona for this chat", _mode_handler(engine)))
    if engine.bot.models:
        found.append(Command("model", "Show or switch the model for this chat", _model_handler(engine)))
    return found


def argument(text: str) -> str:
    """What follows the command word: ``concise`` in ``/mode concise``."""
    parts = text.strip().split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def may_switch(bot: BotProfile, message: IncomingMessage) -> bool:
    return not bot.switch_admins_only or message.user_id in bot.admins


async def choice_line(engine: ConversationEngine, session_id: str) -> str:
    """``Mode: concise · Model: gpt-4o`` for ``/help``; empty when the bot offers no choice."""
    bot = engine.bot
    if not (bot.modes or bot.models):
        return ""
    choice = await engine.store.chat_choice(session_id)
    chosen = bot.choosing(choice.mode, choice.model)
    parts = []
    if bot.modes:
        mode = bot.mode(choice.mode)
        parts.append(f"Mode: {mode.name if mode else DEFAULT}")
    parts.append(f"Model: {chosen.model_name}")
    return "Now: " + " · ".join(parts)


def _mode_handler(engine: ConversationEngine) -> CommandHandler:
    async def handle(message: IncomingMessage) -> str:
        bot = engine.bot
        choice = await engine.store.chat_choice(message.session_id)
        current = bot.mode(choice.mode)
        wanted = argument(message.text).lower()
        if not wanted:
            lines = [f"Mode now: {current.name if current else DEFAULT}", ""]
            lines.append(f"• {DEFAULT}: my usual self")
            lines += [f"• {mode.name}: {mode.description or 'no description'}" for mode in bot.modes]
            lines += ["", "Switch with /mode NAME."]
            return "\n".join(lines)
        if not may_switch(bot, message):
            return ADMINS_ONLY.format(what="mode")
        if wanted == DEFAULT:
            await engine.store.set_chat_choice(message.session_id, ChatChoice(None, choice.model))
            return f"Back to my usual self. {KEPT}"
        mode = bot.mode(wanted)
        if mode is None:
            names = ", ".join([DEFAULT, *(m.name for m in bot.modes)])
            return f"I have no mode called {wanted!r}. Choose one of: {names}."
        await engine.store.set_chat_choice(message.session_id, ChatChoice(mode.name, choice.model))
        about = f" ({mode.description})" if mode.description else ""
        return f"Mode switched to {mode.name}{about}. {KEPT}"

    return handle


def _model_handler(engine: ConversationEngine) -> CommandHandler:
    async def handle(message: IncomingMessage) -> str:
        bot = engine.bot
        choice = await engine.store.chat_choice(message.session_id)
        base = bot.choosing(choice.mode, None).model_name  # what this chat uses without a /model choice
        now = bot.choosing(choice.mode, choice.model).model_name
        wanted = argument(message.text)
        if not wanted:
            lines = [f"Model now: {now}", ""]
            lines.append(f"• {DEFAULT}: {base}")
            lines += [f"• {model}" for model in bot.models]
            lines += ["", "Switch with /model NAME."]
            return "\n".join(lines)
        if not may_switch(bot, message):
            return ADMINS_ONLY.format(what="model")
        if wanted.lower() == DEFAULT:
            await engine.store.set_chat_choice(message.session_id, ChatChoice(choice.mode, None))
            return f"Back to the usual model ({base}). {KEPT}"
        if wanted not in bot.models:
            return f"I can't use {wanted!r} here. Choose one of: {', '.join([DEFAULT, *bot.models])}."
        await engine.store.set_chat_choice(message.session_id, ChatChoice(choice.mode, wanted))
        return f"Model switched to {wanted}. {KEPT}"

    return handle
