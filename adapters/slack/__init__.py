"""The Slack adapter: mentions in channels, DMs, threads and AI-app threads, streamed with Slack's native
streams (``chat.startStream``) where it can, else in place with ``chat.update``.

``chatbot run --platform slack`` calls :func:`create_runner`. See docs/slack.md for setting up the app.
"""

from __future__ import annotations

from adapters.slack.runner import SlackRunner
from adapters.slack.settings import SlackSettings
from adapters.work_queue import queue_from
from core.conversation import ConversationEngine

__all__ = ["SlackRunner", "create_runner"]


def create_runner(settings: SlackSettings, engine: ConversationEngine) -> SlackRunner:
    """A Slack runner for ``settings``: Socket Mode if ``SLACK_APP_TOKEN`` is set, HTTP mode otherwise."""
    return SlackRunner(settings, engine, queue=queue_from(settings))
