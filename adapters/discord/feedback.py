"""👍 / 👎 under Discord replies: a row of two buttons added to the reply's last message once its final
text landed (a message edit that sends only ``components``, so the text is never touched), and the
component interactions (type 3) a click sends through the gateway.

The voter's acknowledgement is an ephemeral interaction response (only they see it, and it answers the
interaction within Discord's 3 seconds); after a vote the buttons are removed by editing the message's
components away. A button's ``custom_id`` is ``fb:<turn>:up|down``, well inside Discord's 100 characters
(https://discord.com/developers/docs/components/reference#button). The view that builds the row is
stopped at once: clicks are handled here, from ``on_interaction``, not by discord.py's view store, so they
still work after a restart. The rule for votes is in :mod:`adapters.feedback`.
"""

from __future__ import annotations

import logging

import discord

from adapters.base import ReplyDispatcher
from adapters.discord.target import DiscordTarget, translated
from adapters.feedback import DOWN_LABEL, UP_LABEL, Feedback, add_buttons, payload
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.store import DOWN, UP
from core.streaming import ReplyTarget, StreamedReply

log = logging.getLogger(__name__)


def button_row(turn_id: int) -> discord.ui.View:
    """The two buttons for a turn (a view only to build the components; it is never listened to)."""
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(label=UP_LABEL, style=discord.ButtonStyle.secondary, custom_id=payload(turn_id, UP))
    )
    view.add_item(
        discord.ui.Button(
            label=DOWN_LABEL, style=discord.ButtonStyle.secondary, custom_id=payload(turn_id, DOWN)
        )
    )
    return view


class DiscordFeedback:
    """Adds the buttons after each final reply and handles the clicks."""

    def __init__(self, feedback: Feedback, dispatcher: ReplyDispatcher) -> None:
        self.feedback = feedback
        self.dispatcher = dispatcher
        dispatcher.after_reply.append(self.after_reply)

    async def after_reply(
        self, message: IncomingMessage, target: ReplyTarget, result: StreamedReply | None
    ) -> None:
        turn_id = await self.feedback.turn_for(message, result)
        if turn_id is None or result is None or not isinstance(target, DiscordTarget):
            return
        last = result.refs[-1]
        if not isinstance(last, discord.Message | discord.PartialMessage):
            return
        view = button_row(turn_id)

        async def add() -> None:
            with translated():
                await last.edit(view=view)

        try:
            await add_buttons(message, target, self.feedback.engine.clock, add)  # the channel's pace
        finally:
            view.stop()  # out of discord.py's view store: on_interaction handles the clicks

    async def on_click(self, interaction: discord.Interaction[discord.Client]) -> None:
        """Count a click on one of our buttons; any other interaction (a slash command...) is ignored."""
        outcome = await self.feedback.click(_custom_id(interaction), interaction.user.id)
        if outcome is None:
            return
        try:
            await interaction.response.send_message(outcome.text, ephemeral=True)
        except (discord.HTTPException, OSError) as exc:
            log.info("discord: could not acknowledge a vote: %s", exc)
        shown = interaction.message
        if outcome.closes and shown is not None:
            try:
                await shown.edit(view=None)
            except (discord.HTTPException, OSError) as exc:
                log.warning("discord: could not remove the feedback buttons: %s", exc)


def _custom_id(interaction: discord.Interaction[discord.Client]) -> str:
    """A component interaction's custom_id; "" for any other interaction."""
    if interaction.type is not discord.InteractionType.component or interaction.data is None:
        return ""
    return str(interaction.data.get("custom_id", ""))


def discord_feedback(
    engine: ConversationEngine, dispatcher: ReplyDispatcher, *, enabled: bool
) -> DiscordFeedback | None:
    """Feedback buttons for the runner, or ``None`` when turned off or the store keeps no votes."""
    feedback = Feedback.create(engine, "discord", enabled=enabled)
    return DiscordFeedback(feedback, dispatcher) if feedback is not None else None
