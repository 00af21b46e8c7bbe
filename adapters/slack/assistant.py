"""Slack's assistant threads (Agents & AI Apps): a greeting and suggested prompts when a user opens a
thread, and a title from the thread's first question.

``assistant_thread_started`` carries ``assistant_thread: {user_id, channel_id, thread_ts, context}``
(https://docs.slack.dev/reference/events/assistant_thread_started). The prompts go with
``assistant.threads.setSuggestedPrompts`` (``prompts: [{title, message}]``, at most four), the title with
``assistant.threads.setTitle`` (https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts,
.../assistant.threads.setTitle; ``assistant_threads_setSuggestedPrompts`` / ``assistant_threads_setTitle`` in
the installed ``slack_sdk/web/async_client.py``). Both need ``assistant:write``. Neither is worth failing a
conversation for: a refusal is logged and the thread goes on without it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.base import ReplyDispatcher
from adapters.slack.sessions import Place, Recent
from adapters.slack.target import SlackReplyTarget, translate
from core.bot_profile import BotProfile
from core.headlines import headline

log = logging.getLogger(__name__)

MAX_PROMPTS = 4  # Slack shows up to four suggested prompts
PROMPT_TITLE_CHARS = 75  # a prompt's title is the short label on its button; the message is sent whole
TITLE_CHARS = 80  # a thread title is a history list entry: one short line


def prompt_payload(prompts: tuple[str, ...]) -> list[dict[str, str]]:
    """The bot's suggested prompts as Slack's ``[{title, message}]``, the first :data:`MAX_PROMPTS`."""
    return [
        {"title": headline(p, PROMPT_TITLE_CHARS), "message": p} for p in prompts[:MAX_PROMPTS] if p.strip()
    ]


class AssistantThreads:
    """Greets new assistant threads and titles them after their first question."""

    def __init__(self, client: AsyncWebClient, bot: BotProfile, dispatcher: ReplyDispatcher) -> None:
        self.client = client
        self.bot = bot
        self.dispatcher = dispatcher
        self.untitled = Recent(10_000)  # threads opened and not asked anything yet

    def started(self, place: Place, target: SlackReplyTarget) -> None:
        """Greet the thread and offer the bot's prompts; remember it, to title it after its first question."""
        self.untitled.add(place.thread_key)
        self.dispatcher.background(self._greet(place, target), name=f"greet:{place.session_id}")

    def first_question(self, place: Place, text: str) -> None:
        """Title a thread opened in this process after ``text``, when it is the thread's first question."""
        if self.untitled.take(place.thread_key) and text.strip():
            self.dispatcher.background(self._title(place, headline(text, TITLE_CHARS)), name="title")

    async def _greet(self, place: Place, target: SlackReplyTarget) -> None:
        # a fixed text: no "is thinking…" line before it, and nothing to stream
        await self.dispatcher.say(dataclasses.replace(target, native=None), self.bot.greeting)
        prompts = prompt_payload(self.bot.suggested_prompts)
        if prompts and place.thread_ts:
            thread_ts = place.thread_ts
            await _quietly(
                "assistant.threads.setSuggestedPrompts",
                lambda: self.client.assistant_threads_setSuggestedPrompts(
                    channel_id=place.channel, thread_ts=thread_ts, prompts=prompts
                ),
            )

    async def _title(self, place: Place, title: str) -> None:
        if place.thread_ts:
            thread_ts = place.thread_ts
            await _quietly(
                "assistant.threads.setTitle",
                lambda: self.client.assistant_threads_setTitle(
                    channel_id=place.channel, thread_ts=thread_ts, title=title
                ),
            )


async def _quietly(method: str, call: Callable[[], Awaitable[Any]]) -> None:
    try:
        await call()
    except Exception as exc:  # a missing title or prompt list never fails the conversation
        log.info("slack: %s failed: %s", method, translate(method, exc))
