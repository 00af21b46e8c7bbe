"""Where discord.py connects: Discord itself, or another REST base and gateway (a local fake, a proxy).

discord.py 2.7 has no per-client setting for either URL. Both are class attributes read at call time:
``discord.http.Route.BASE`` (http.py line 310, read in ``Route.__init__`` at line 318 for every REST call,
interaction callbacks and follow-ups included) and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``
(gateway.py line 314, read by ``from_client`` at line 383 and after an invalidated session at line 567).
The ``connector`` and ``proxy`` options of ``Client`` cannot help: the URLs are ``https``/``wss`` to
discord.com. So this module is the one place that sets them, only when ``DISCORD_API_BASE_URL`` or
``DISCORD_GATEWAY_URL`` is set, and puts the originals back when the last runner using them stops.

The setting is process-wide: every client in the process talks to the same place while it is in use, so a
second runner that asks for different endpoints is refused instead of silently redirecting the first.
"""

from __future__ import annotations

from dataclasses import dataclass

import discord
import yarl

from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A REST base (``.../api/v10``) and a gateway URL (``ws://...``); ``None`` keeps Discord's own."""

    api_base_url: str | None = None
    gateway_url: str | None = None

    @property
    def custom(self) -> bool:
        return bool(self.api_base_url or self.gateway_url)


class _Override:
    """The endpoints in force, how many runners use them, and discord.py's originals to put back."""

    def __init__(self) -> None:
        self.active: Endpoints | None = None
        self.users = 0
        self.saved: tuple[str, yarl.URL] | None = None


_override = _Override()


def use(endpoints: Endpoints) -> bool:
    """Point discord.py at ``endpoints`` (nothing to do for Discord's own); return whether to ``release``.

    Raises :class:`ConfigError` while another runner in this process uses different endpoints.
    """
    if not endpoints.custom:
        return False
    if _override.active is not None:
        if _override.active != endpoints:
            raise ConfigError(
                "another Discord runner in this process uses other DISCORD_API_BASE_URL / "
                "DISCORD_GATEWAY_URL: discord.py reads them process-wide, so one process talks to one Discord"
            )
        _override.users += 1
        return True
    _override.saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    if endpoints.api_base_url:
        discord.http.Route.BASE = endpoints.api_base_url.rstrip("/")
    if endpoints.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(endpoints.gateway_url)
    _override.active, _override.users = endpoints, 1
    return True


def release() -> None:
    """One runner is done with the endpoints it ``use``-d; the last one puts discord.py's own back."""
    if _override.users == 0:
        return
    _override.users -= 1
    if _override.users == 0 and _override.saved is not None:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = _override.saved
        _override.active, _override.saved = None, None
