"""The one platform-neutral shape of a message a user sent to the bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.attachments import Attachment


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A user's message, already mapped onto a session by its adapter.

    ``session_id`` decides whose history the message joins (``telegram:42``, ``console:default``, ...).
    ``user_id`` is platform-qualified (``telegram:1001``) so per-user rules hold across platforms.
    ``extras`` carries whatever an adapter wants to keep beside the text; the core never reads it.
    ``event_id`` is the platform's id of the delivery (``telegram:<bot>:<update_id>``, a Slack
    ``event_id``) when handling may be repeated (a work queue retries a job whose worker died): the
    question is then stored once however often the message is handled (see
    :class:`core.store.EventQuestions`). Empty: every handling is a new message.
    ``attachments`` are the files sent with it (photos, voice notes, documents), fetched only when read
    (:mod:`core.attachments`); ``text`` is then the caption, possibly empty.
    """

    session_id: str
    text: str
    user_id: str = ""
    platform: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    event_id: str = ""
    attachments: tuple[Attachment, ...] = ()
