"""Slack's native AI features: the status line while the model thinks, and native streaming.

- **Status.** ``assistant.threads.setStatus`` shows "<bot> is thinking…" under a thread until the app
  replies or clears it (an empty ``status``); https://docs.slack.dev/reference/methods/assistant.threads.setStatus
  (``slack_sdk/web/async_client.py::assistant_threads_setStatus`` in the installed 3.48). It takes
  ``chat:write`` or ``assistant:write``; outside assistant threads it works with ``chat:write`` since 2026.
- **Streams.** ``chat.startStream`` opens a reply in a thread (``thread_ts`` is required, and
  ``recipient_team_id`` / ``recipient_user_id`` in channels), ``chat.appendStream`` appends markdown (at
  most 12,000 characters a call), ``chat.stopStream`` ends it; all Tier 4, ``chat:write``
  (https://docs.slack.dev/reference/methods/chat.startStream, .../chat.appendStream, .../chat.stopStream;
  ``chat_startStream`` / ``chat_appendStream`` / ``chat_stopStream`` in the installed client). We call the
  three methods, not the SDK's ``chat_stream()`` helper (``slack_sdk/web/async_chat_stream.py``): the
  helper buffers text itself and cannot say how much of it landed when a call fails, which the streaming
  core needs to retry after a 429 without losing or repeating text.

A workspace that refuses a feature (:data:`REFUSALS`) is remembered in :class:`NativeFeatures` and not
asked again until the process restarts; the user sees no error, the reply goes the ``chat.update`` way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

THINKING = "is thinking…"
# Errors that mean "not here, not for this app": stop using the feature in that workspace. Others
# (rate limits, a network failure, a missing channel) are ordinary failures of the call.
REFUSALS = frozenset(
    {
        "unknown_method",
        "not_allowed",
        "not_allowed_token_type",
        "missing_scope",
        "no_permission",
        "method_deprecated",
        "feature_not_enabled",
        "team_access_not_granted",
        "channel_type_not_supported",
        "not_implemented",
    }
)

# Errors that end one stream but say nothing about the workspace: a stream lives about five minutes
# (``message_not_in_streaming_state`` after that), or the user pressed Stop. The message goes on by
# ``chat.update``, which the SDK names as the fallback for an expired stream (``AsyncChatStream.ts``).
STREAM_OVER = frozenset({"message_not_in_streaming_state", "stopped_by_user", "streaming_state_conflict"})


@dataclass(slots=True)
class StreamRef:
    """A reply being written with Slack's native stream: the message's ``ts`` and the text appended."""

    ts: str
    appended: str
    open: bool = True


class NativeFeatures:
    """Which workspaces refused the status line or native streams (kept for the life of the process)."""

    def __init__(self, *, status: bool = True, streams: bool = True) -> None:
        self.status = status
        self.streams = streams
        self._no_status: set[str] = set()
        self._no_streams: set[str] = set()

    def status_in(self, team: str) -> bool:
        return self.status and team not in self._no_status

    def streams_in(self, team: str) -> bool:
        return self.streams and team not in self._no_streams

    def refuse_status(self, team: str, error: str) -> None:
        if team not in self._no_status:
            log.info("slack: workspace %s refused the status line (%s); not asking again", team, error)
        self._no_status.add(team)

    def refuse_streams(self, team: str, error: str) -> None:
        if team not in self._no_streams:
            log.info("slack: workspace %s refused native streams (%s); editing messages there", team, error)
        self._no_streams.add(team)


def refusal(error: str) -> bool:
    return error in REFUSALS


def stream_over(error: str) -> bool:
    return error in STREAM_OVER
