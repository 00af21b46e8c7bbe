"""Which gateway shards a process runs: none (one plain connection, the default), the ones named by
``DISCORD_SHARD_IDS`` of ``DISCORD_SHARD_COUNT``, every one of ``DISCORD_SHARD_COUNT``, or every one Discord
recommends (``DISCORD_AUTO_SHARD``).

Discord sends a guild's events to shard ``(guild_id >> 22) % shard_count`` and DMs to shard 0 only
(https://discord.com/developers/docs/events/gateway#sharding), so N processes with disjoint shard ids of
the same count answer every guild exactly once between them. Any sharded setting runs discord.py's
``AutoShardedClient``, which keeps one gateway connection per shard in the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.discord.settings import DiscordSettings
from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Sharding:
    """``shard_ids`` ``None``: every shard; ``shard_count`` ``None``: the count Discord recommends."""

    shard_ids: tuple[int, ...] | None = None
    shard_count: int | None = None

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments of ``discord.AutoShardedClient``."""
        options: dict[str, Any] = {}
        if self.shard_count is not None:
            options["shard_count"] = self.shard_count
        if self.shard_ids is not None:
            options["shard_ids"] = list(self.shard_ids)
        return options


def sharding_from(settings: DiscordSettings) -> Sharding | None:
    """The sharding the settings ask for (``None``: a plain client), or a :class:`ConfigError` saying why not."""
    text = settings.discord_shard_ids.replace(",", " ").split()
    count = settings.discord_shard_count
    if not text:
        if count is not None or settings.discord_auto_shard:
            return Sharding(shard_count=count)
        return None
    try:
        ids = tuple(sorted({int(part) for part in text}))
    except ValueError:
        raise ConfigError(
            f"DISCORD_SHARD_IDS must be shard numbers separated by commas (like 0,1), not {settings.discord_shard_ids!r}"
        ) from None
    if count is None:
        raise ConfigError(
            "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT, the number of shards of all processes"
        )
    wrong = [shard for shard in ids if not 0 <= shard < count]
    if wrong:
        raise ConfigError(
            f"DISCORD_SHARD_IDS {', '.join(map(str, wrong))} not in 0..{count - 1} (DISCORD_SHARD_COUNT is {count})"
        )
    return Sharding(shard_ids=ids, shard_count=count)
