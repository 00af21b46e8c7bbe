"""The Discord adapter's settings (keys ``DISCORD_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.config import SettingsBase


class DiscordSettings(SettingsBase):
    """The Discord adapter's settings (keys ``DISCORD_*``)."""

    discord_bot_token: SecretStr | None = Field(default=None, alias="DISCORD_BOT_TOKEN")
    discord_api_base_url: str | None = Field(default=None, alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    discord_allowed_guilds: str = Field(default="", alias="DISCORD_ALLOWED_GUILDS")
    discord_allowed_channels: str = Field(default="", alias="DISCORD_ALLOWED_CHANNELS")
    discord_allowed_users: str = Field(default="", alias="DISCORD_ALLOWED_USERS")
    discord_allowed_roles: str = Field(default="", alias="DISCORD_ALLOWED_ROLES")
    discord_thread_followups: bool = Field(default=True, alias="DISCORD_THREAD_FOLLOWUPS")
    discord_thread_replies: bool = Field(default=False, alias="DISCORD_THREAD_REPLIES")
    discord_message_content: bool = Field(default=False, alias="DISCORD_MESSAGE_CONTENT")
    discord_edit_interval: float = Field(default=1.0, gt=0, alias="DISCORD_EDIT_INTERVAL")
    discord_guild_ready_timeout: float = Field(default=2.0, ge=0, alias="DISCORD_GUILD_READY_TIMEOUT")
    # Sharding (docs/production.md): the shards this process runs, of how many; or discord.py's
    # AutoShardedClient running every shard Discord recommends in this one process.
    discord_shard_ids: str = Field(default="", alias="DISCORD_SHARD_IDS")
    discord_shard_count: int | None = Field(default=None, ge=1, alias="DISCORD_SHARD_COUNT")
    discord_auto_shard: bool = Field(default=False, alias="DISCORD_AUTO_SHARD")
    discord_feedback_buttons: bool = Field(default=True, alias="DISCORD_FEEDBACK_BUTTONS")
