"""The Slack adapter's settings (keys ``SLACK_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.config import SettingsBase


class SlackSettings(SettingsBase):
    """The Slack adapter's settings (keys ``SLACK_*``)."""

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_port: int = Field(default=3000, alias="SLACK_PORT")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_allowed_channels: str = Field(default="", alias="SLACK_ALLOWED_CHANNELS")
    slack_allowed_users: str = Field(default="", alias="SLACK_ALLOWED_USERS")
    slack_thread_followups: bool = Field(default=True, alias="SLACK_THREAD_FOLLOWUPS")
    slack_edit_interval: float = Field(default=1.0, gt=0, alias="SLACK_EDIT_INTERVAL")
    slack_feedback_buttons: bool = Field(default=True, alias="SLACK_FEEDBACK_BUTTONS")
    slack_native_streams: bool = Field(default=True, alias="SLACK_NATIVE_STREAMS")
    slack_status: bool = Field(default=True, alias="SLACK_STATUS")
