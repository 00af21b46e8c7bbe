"""The work queue's settings (keys ``CHATBOT_QUEUE_*``): unset, replies run in the receiving process."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from core.config import SettingsBase


class QueueSettings(SettingsBase):
    """Where the shared work queue lives, and how fast a dead worker's replies are taken over.

    The takeover bound: a worker heartbeats every ``queue_heartbeat`` seconds; one silent for
    ``queue_stalled_after`` seconds counts as dead, and every worker looks for such jobs every
    ``queue_heartbeat`` seconds, so a dead worker's job runs again within about
    ``queue_stalled_after + 2 * queue_heartbeat`` seconds (14 s with the defaults).
    """

    queue_url: SecretStr | None = Field(default=None, alias="CHATBOT_QUEUE_URL")
    queue_heartbeat: float = Field(default=2.0, gt=0, alias="CHATBOT_QUEUE_HEARTBEAT")
    queue_stalled_after: float = Field(default=10.0, gt=0, alias="CHATBOT_QUEUE_STALLED_AFTER")
    queue_concurrency: int = Field(default=32, ge=1, le=1000, alias="CHATBOT_QUEUE_CONCURRENCY")

    @model_validator(mode="after")
    def _stalled_after_heartbeats(self) -> QueueSettings:
        if self.queue_stalled_after < 2 * self.queue_heartbeat:
            raise ValueError(
                "CHATBOT_QUEUE_STALLED_AFTER must be at least twice CHATBOT_QUEUE_HEARTBEAT, or a live "
                "worker whose heartbeat is a little late is taken for dead"
            )
        return self

    def queue_dsn(self) -> str | None:
        """The queue's PostgreSQL URL, or ``None`` when replies run in-process (the default)."""
        return self.queue_url.get_secret_value() if self.queue_url is not None else None
