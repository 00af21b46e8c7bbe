"""Replies as durable jobs in a PostgreSQL work queue (procrastinate), for N workers behind a load
balancer: see docs/work-queue.md. Without ``CHATBOT_QUEUE_URL`` nothing here runs."""

from __future__ import annotations

from adapters.work_queue.delivery import QueuedReplies, job_payload, message_of
from adapters.work_queue.queue import QueueTuning, QueueUnavailable, WorkQueue
from adapters.work_queue.settings import QueueSettings


def queue_from(settings: object) -> WorkQueue | None:
    """The work queue the settings name, or ``None`` (replies run in the receiving process)."""
    if not isinstance(settings, QueueSettings):
        return None
    url = settings.queue_dsn()
    if url is None:
        return None
    tuning = QueueTuning(
        heartbeat=settings.queue_heartbeat,
        stalled_after=settings.queue_stalled_after,
        concurrency=settings.queue_concurrency,
    )
    return WorkQueue(url, tuning)


__all__ = [
    "QueueSettings",
    "QueueTuning",
    "QueueUnavailable",
    "QueuedReplies",
    "WorkQueue",
    "job_payload",
    "message_of",
    "queue_from",
]
