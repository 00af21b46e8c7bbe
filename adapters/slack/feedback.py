"""👍 / 👎 under Slack replies: blocks added to the reply's last message once its final text landed (one
``chat.update`` that repeats the text as section blocks and adds the buttons), and the ``block_actions``
a click sends (to the same request URL as events in HTTP mode, verified by :mod:`adapters.slack.signing`
first; over the socket in Socket Mode).

The buttons are Slack's ``feedback_buttons`` element in a ``context_actions`` block
(https://docs.slack.dev/reference/block-kit/block-elements/feedback-buttons-element; slack_sdk's
``FeedbackButtonsElement``); a workspace that refuses it (``invalid_blocks``) gets two plain buttons in an
``actions`` block instead. The voter's acknowledgement is an ephemeral message (``chat.postEphemeral``:
only they see it); after a vote the buttons are taken off with another ``chat.update``. Everything needs
``chat:write`` only, plus Interactivity turned on in the app's settings (docs/slack.md). The rule for votes
is in :mod:`adapters.feedback`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextActionsBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.base import ReplyDispatcher
from adapters.feedback import DOWN_LABEL, UP_LABEL, Feedback, add_buttons, payload
from adapters.slack.target import SlackReplyTarget, render, translate
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.splitting import split_text
from core.store import DOWN, UP
from core.streaming import ReplyTarget, StreamedReply

log = logging.getLogger(__name__)

ACTION_ID = "feedback"  # the feedback_buttons element; the plain buttons are feedback_up / feedback_down
ACTIONS = re.compile(r"^feedback(_up|_down)?$")
SECTION_CHARS = 3_000  # a section block's text limit
FEEDBACK_BLOCKS = frozenset({"context_actions", "actions"})


def text_blocks(text: str) -> list[dict[str, Any]]:
    """The reply's text as section blocks (a message with blocks shows them instead of its text)."""
    return [
        SectionBlock(text=MarkdownTextObject(text=part, verbatim=True)).to_dict()
        for part in split_text(text, SECTION_CHARS, len)
        if part.strip()
    ]


def feedback_buttons(turn_id: int) -> dict[str, Any]:
    """Slack's own thumbs up / down, in a context_actions block."""
    element = FeedbackButtonsElement(
        action_id=ACTION_ID,
        positive_button=FeedbackButtonObject(
            text=UP_LABEL, accessibility_label="Good reply", value=payload(turn_id, UP)
        ),
        negative_button=FeedbackButtonObject(
            text=DOWN_LABEL, accessibility_label="Bad reply", value=payload(turn_id, DOWN)
        ),
    )
    return ContextActionsBlock(block_id=f"fb{turn_id}", elements=[element]).to_dict()


def plain_buttons(turn_id: int) -> dict[str, Any]:
    """Two ordinary buttons, for a workspace that refuses the feedback_buttons element."""
    return ActionsBlock(
        block_id=f"fb{turn_id}",
        elements=[
            ButtonElement(text=UP_LABEL, action_id=f"{ACTION_ID}_up", value=payload(turn_id, UP)),
            ButtonElement(text=DOWN_LABEL, action_id=f"{ACTION_ID}_down", value=payload(turn_id, DOWN)),
        ],
    ).to_dict()


class SlackFeedback:
    """Adds the buttons after each final reply and handles the clicks."""

    def __init__(
        self, feedback: Feedback, dispatcher: ReplyDispatcher, app: AsyncApp, client: AsyncWebClient
    ) -> None:
        self.feedback = feedback
        self.dispatcher = dispatcher
        self.client = client
        dispatcher.after_reply.append(self.after_reply)
        app.action(ACTIONS)(self.on_action)

    async def after_reply(
        self, message: IncomingMessage, target: ReplyTarget, result: StreamedReply | None
    ) -> None:
        turn_id = await self.feedback.turn_for(message, result)
        if turn_id is None or result is None or not isinstance(target, SlackReplyTarget):
            return
        text = render(result.messages[-1], final=True)
        blocks = text_blocks(text)
        channel, ts = target.channel, str(result.refs[-1])
        choices = [feedback_buttons(turn_id), plain_buttons(turn_id)]

        async def add() -> None:
            try:
                await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=[*blocks, choices[0]])
            except SlackApiError as exc:
                if exc.response.get("error") == "invalid_blocks" and len(choices) > 1:
                    choices.pop(0)  # this workspace does not take the feedback element: plain buttons then
                    await add()
                    return
                raise translate("chat.update", exc) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise translate("chat.update", exc) from exc

        await add_buttons(message, target, self.feedback.engine.clock, add)  # the workspace's budget

    async def on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        """bolt's listener: ack at once (Slack wants it within 3 s), vote in the background."""
        await ack()
        self.dispatcher.background(self._on_click(body, action), name="feedback:slack")

    async def _on_click(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        user = str((body.get("user") or {}).get("id") or "")
        shown: dict[str, Any] = body.get("message") or {}
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        if not user or not channel:
            return
        outcome = await self.feedback.click(action.get("value"), user)
        if outcome is None:
            return
        await self._tell(channel, user, outcome.text, shown.get("thread_ts"))
        if outcome.closes and shown.get("ts"):
            kept = [block for block in shown.get("blocks") or [] if block.get("type") not in FEEDBACK_BLOCKS]
            try:
                await self.client.chat_update(
                    channel=channel, ts=str(shown["ts"]), text=str(shown.get("text") or ""), blocks=kept
                )
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("slack: could not remove the feedback buttons: %s", exc)

    async def _tell(self, channel: str, user: str, text: str, thread_ts: Any) -> None:
        """A notice only the voter sees."""
        kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if thread_ts:
            kwargs["thread_ts"] = str(thread_ts)
        try:
            await self.client.chat_postEphemeral(**kwargs)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("slack: could not acknowledge a vote: %s", exc)


def slack_feedback(
    engine: ConversationEngine,
    dispatcher: ReplyDispatcher,
    app: AsyncApp,
    client: AsyncWebClient,
    *,
    enabled: bool,
) -> SlackFeedback | None:
    """Feedback buttons for the runner, or ``None`` when turned off or the store keeps no votes."""
    feedback = Feedback.create(engine, "slack", enabled=enabled)
    return SlackFeedback(feedback, dispatcher, app, client) if feedback is not None else None
