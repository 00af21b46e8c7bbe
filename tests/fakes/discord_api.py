"""A fake Discord on 127.0.0.1 for the real discord.py client: REST API and gateway websocket.

Point discord.py at it with ``DISCORD_API_BASE_URL=fake.api_url`` and ``DISCORD_GATEWAY_URL=fake.gateway_url``.

Gateway (``/gateway``, JSON text frames): HELLO -> (heartbeat -> ACK) -> IDENTIFY -> READY -> one GUILD_CREATE
per guild, then whatever the test dispatches (``user_says``, ``slash``), each dispatch with a rising ``s``.

REST (``/api/v10``): the bot user and application, message create/edit keeping each message's current text
(400 with code 50035 above 2,000 characters) and its buttons (clicks: ``click``), typing, threads started from a message (section "threads"), application command overwrite, interaction callbacks
and follow-ups. Every call is recorded with a timestamp (:attr:`FakeDiscord.calls`); ``rate_limit`` and
``fail`` script error answers on demand (429s carry ``retry_after`` and a ``Via`` header, as Discord's do).

Sharding (Discord's docs, "Sharding": https://discord.com/developers/docs/events/gateway#sharding): an
IDENTIFY may carry ``shard: [shard_id, num_shards]``; that connection then gets READY and GUILD_CREATE for
the guilds with ``(guild_id >> 22) % num_shards == shard_id`` only, and only their events; DMs go to shard 0
only. ``GET /gateway/bot`` recommends ``recommended_shards`` (discord.py's ``AutoShardedClient`` asks it).
A second guild (``OTHER_GUILD_ID``, on the other shard of two) joins with ``add_other_guild()``.

Opt-in (``enforce_pace=True``, off by default): Discord's observed pace of about 5 message creates and edits
per 5 seconds per channel (../shared/PLATFORMS.md). A create or edit that comes too fast is answered 429
with ``retry_after`` (and ``Via``, so discord.py takes it for a rate limit: it sleeps and retries by itself)
and is not carried out. No ``X-RateLimit-*`` headers are sent, so discord.py never paces pre-emptively.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_files import DiscordCdn

MAX_CHARS = 2000

BOT_ID = 900_000_000_000_000_001
APP_ID = BOT_ID
GUILD_ID = 100_000_000_000_000_001
GENERAL_ID = 200_000_000_000_000_001  # a text channel
RANDOM_ID = 200_000_000_000_000_002  # another text channel
THREAD_ID = 200_000_000_000_000_003  # a public thread in #general
DM_ID = 300_000_000_000_000_001  # Alice's DM channel with the bot
DM2_ID = 300_000_000_000_000_002  # Bob's DM channel with the bot
ALICE_ID = 500_000_000_000_000_001
BOB_ID = 500_000_000_000_000_002
OTHER_BOT_ID = 500_000_000_000_000_099
MEMBER_ROLE_ID = 700_000_000_000_000_001
BOT_ROLE_ID = 700_000_000_000_000_099

ISO_EPOCH = "2024-01-01T00:00:00+00:00"
# A second server for sharding tests: (OTHER_GUILD_ID >> 22) % 2 == 1, while GUILD_ID's is 0.
OTHER_GUILD_ID = 100_000_000_004_194_305
OTHER_GENERAL_ID = 200_000_000_000_000_011  # its text channel


def shard_of(guild_id: int, num_shards: int) -> int:
    """The shard that receives a guild's events (Discord's docs, "Sharding": the sharding formula)."""
    return (guild_id >> 22) % num_shards


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "bot": bot,
        "flags": 0,
        "public_flags": 0,
    }


BOT_USER = user_payload(BOT_ID, "chatbot", bot=True)
USERS = {
    ALICE_ID: user_payload(ALICE_ID, "alice"),
    BOB_ID: user_payload(BOB_ID, "bob"),
    OTHER_BOT_ID: user_payload(OTHER_BOT_ID, "otherbot", bot=True),
    BOT_ID: BOT_USER,
}


def _role(role_id: int, name: str, position: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "position": position,
        "permissions": "0",
        "managed": False,
        "mentionable": True,
        "flags": 0,
        **extra,
    }


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def guild_payload() -> dict[str, Any]:
    """The one server of the fake: #general with a thread, #random, a member role and the bot's role."""

    def channel(channel_id: int, name: str, position: int) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 0,
            "name": name,
            "position": position,
            "guild_id": str(GUILD_ID),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    thread = {
        "id": str(THREAD_ID),
        "type": 11,
        "name": "a thread",
        "guild_id": str(GUILD_ID),
        "parent_id": str(GENERAL_ID),
        "owner_id": str(ALICE_ID),
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": ISO_EPOCH,
            "locked": False,
        },
    }
    return {
        "id": str(GUILD_ID),
        "name": "Test Server",
        "icon": None,
        "owner_id": str(ALICE_ID),
        "unavailable": False,
        "large": False,
        "member_count": 3,
        "features": [],
        "emojis": [],
        "stickers": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "premium_tier": 0,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "system_channel_flags": 0,
        "preferred_locale": "en-US",
        "joined_at": ISO_EPOCH,
        "roles": [
            _role(GUILD_ID, "@everyone", 0),
            _role(MEMBER_ROLE_ID, "members", 1),
            _role(BOT_ROLE_ID, "chatbot", 2, managed=True, tags={"bot_id": str(BOT_ID)}),
        ],
        "members": [
            {
                "user": BOT_USER,
                "roles": [str(BOT_ROLE_ID)],
                "joined_at": ISO_EPOCH,
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        ],
        "channels": [channel(GENERAL_ID, "general", 0), channel(RANDOM_ID, "random", 1)],
        "threads": [thread],
    }


def other_guild_payload() -> dict[str, Any]:
    """A second server with one text channel, for sharding tests."""
    payload = guild_payload()
    channel = {**payload["channels"][0], "id": str(OTHER_GENERAL_ID), "guild_id": str(OTHER_GUILD_ID)}
    payload.update(id=str(OTHER_GUILD_ID), name="Other Server", channels=[channel], threads=[])
    payload["roles"] = [_role(OTHER_GUILD_ID, "@everyone", 0), *payload["roles"][1:]]
    return payload


_MESSAGE_PATH = re.compile(r"/channels/(\d+)/messages(/\d+)?")  # create (POST) or edit (PATCH)

CHANNEL_GUILDS: dict[int, int | None] = {
    GENERAL_ID: GUILD_ID,
    RANDOM_ID: GUILD_ID,
    THREAD_ID: GUILD_ID,
    DM_ID: None,
    DM2_ID: None,
    OTHER_GENERAL_ID: OTHER_GUILD_ID,
}


@dataclass
class Call:
    """One REST request as the fake saw it."""

    method: str
    path: str
    body: Any
    at: float
    status: int = 200


@dataclass
class Posted:
    """A message on the fake, by anyone; ``texts`` holds every version, ``text`` the current one."""

    id: int
    channel_id: int
    author_id: int
    texts: list[str]
    reference_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.texts[-1]


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


class FakeDiscord:
    """The server and its knobs. ``await start()`` serves on a free loopback port."""

    def __init__(
        self,
        *,
        echo_own_messages: bool = True,
        clock: Callable[[], float] = time.monotonic,
        enforce_pace: bool = False,
        channel_pace: tuple[int, float] = (5, 5.0),
    ) -> None:
        self.echo_own_messages = echo_own_messages
        self.clock = clock  # what ``Call.at`` is measured with (a test's virtual clock, if it has one)
        # Answer 429 when message creates and edits in a channel come faster than ``channel_pace``
        # (count, seconds); off by default, where tests script their 429s with ``rate_limit``.
        self.enforce_pace = enforce_pace
        self.channel_pace = channel_pace
        self._paced: dict[str, deque[float]] = {}
        self.calls: list[Call] = []
        self.messages: dict[int, Posted] = {}
        self.identify: list[dict[str, Any]] = []
        self.interaction_responses: dict[str, list[dict[str, Any]]] = {}
        self.refuse_components = 0  # answer this many message edits that set buttons 403 Missing Access
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or a guild id -> registered commands
        self.api_url = ""
        self.gateway_url = ""
        self.cdn = DiscordCdn()  # attachment URLs (tests.fakes.discord_files)
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1_000_000_000_000_000_001)
        self._seq = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._identified = asyncio.Event()
        self._runner: web.AppRunner | None = None
        # sharding: the guilds the fake serves, what /gateway/bot recommends, each connection's shard
        self.guilds: dict[int, Callable[[], dict[str, Any]]] = {GUILD_ID: guild_payload}
        self.recommended_shards = 1
        self._shards: dict[web.WebSocketResponse, tuple[int, int]] = {}
        self.channel_guilds: dict[int, int | None] = dict(CHANNEL_GUILDS)  # and the threads started here
        self.threads: dict[int, dict[str, Any]] = {}  # threads started from a message, by id
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Awaitable[web.Response]]]] = [
            (
                "POST",
                re.compile(r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/threads"),
                self._start_thread,
            ),
            ("GET", re.compile(r"/users/@me"), self._me),
            ("GET", re.compile(r"/gateway/bot"), self._gateway_bot),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._application),
            ("POST", re.compile(r"/channels/(?P<channel>\d+)/messages"), self._create_message),
            (
                "PATCH",
                re.compile(r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)"),
                self._edit_message,
            ),
            ("POST", re.compile(r"/channels/(?P<channel>\d+)/typing"), self._typing),
            ("GET", re.compile(r"/applications/\d+(/guilds/(?P<guild>\d+))?/commands"), self._get_commands),
            ("PUT", re.compile(r"/applications/\d+(/guilds/(?P<guild>\d+))?/commands"), self._put_commands),
            ("POST", re.compile(r"/interactions/\d+/(?P<token>[^/]+)/callback"), self._interaction_callback),
            ("POST", re.compile(r"/webhooks/\d+/(?P<token>[^/]+)"), self._followup),
        ]

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{tail:.*}", self.cdn.download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api_url = f"http://127.0.0.1:{port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        self.cdn.root = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- scripting ---------------------------------------------------------------------------------------

    def rate_limit(self, method: str, path: str, retry_after: float, *, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with a 429 (``path`` is a regex on the API path)."""
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Scope": "user",
        }
        self._failures.append(_Failure(method, re.compile(path), 429, body, headers, times))

    def fail(self, method: str, path: str, status: int, code: int, message: str, *, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with an error."""
        self._failures.append(
            _Failure(method, re.compile(path), status, {"code": code, "message": message}, {}, times)
        )

    async def user_says(
        self,
        text: str,
        *,
        channel_id: int = DM_ID,
        author_id: int = ALICE_ID,
        mention_bot: bool = False,
        reply_to: int | None = None,
        ping_reply: bool = True,
        attachments: int = 0,
        roles: Iterable[int] = (),
        hide_content: bool = False,
        files: Iterable[dict[str, Any]] = (),
        flags: int = 0,
    ) -> int:
        """Dispatch a MESSAGE_CREATE as if a user wrote ``text``; return the new message's id.

        ``mention_bot`` prefixes the bot's mention; ``reply_to`` makes it a reply (pinging the replied author
        unless ``ping_reply`` is false); ``hide_content`` sends it empty, as Discord does for guild messages
        that do not mention the bot when the message content intent is off. ``files`` are attachment
        objects from :attr:`cdn` (``attachments`` adds placeholders the CDN does not have); ``flags`` the
        message's flags (``IS_VOICE_MESSAGE`` for a voice message).
        """
        content = f"<@{BOT_ID}> {text}" if mention_bot else text
        mentions = [BOT_USER] if mention_bot else []
        referenced: dict[str, Any] | None = None
        if reply_to is not None:
            referenced = self.messages[reply_to].payload
            if ping_reply and referenced["author"] not in mentions:
                mentions.append(referenced["author"])
        payload = self._message_payload(
            next(self._ids),
            channel_id,
            USERS[author_id],
            "" if hide_content else content,
            mentions=mentions,
            referenced=referenced,
            roles=roles,
        )
        for index in range(attachments):
            payload["attachments"].append(
                {
                    "id": str(next(self._ids)),
                    "filename": f"photo{index}.png",
                    "size": 1234,
                    "url": f"{self.cdn.root}/attachments/missing/photo{index}.png",
                    "proxy_url": f"{self.cdn.root}/attachments/missing/photo{index}.png",
                    "content_type": "image/png",
                }
            )
        payload["attachments"].extend(files)
        payload["flags"] = flags
        self._remember(payload)
        await self.dispatch("MESSAGE_CREATE", payload)
        return int(payload["id"])

    async def slash(self, name: str, *, channel_id: int = DM_ID, author_id: int = ALICE_ID) -> str:
        """Dispatch an INTERACTION_CREATE for the slash command ``/name``; return its token."""
        return await self._interact(
            2, lambda: {"id": str(next(self._ids)), "name": name, "type": 1}, channel_id, author_id
        )

    async def _interact(
        self,
        kind: int,
        data: Callable[[], dict[str, Any]],
        channel_id: int,
        author_id: int,
        message: dict[str, Any] | None = None,
    ) -> str:
        """Dispatch an INTERACTION_CREATE of ``kind`` (2 a slash command, 3 a button) as ``author_id`` in
        ``channel_id``, a DM or a guild channel; return its token."""
        guild_id = CHANNEL_GUILDS[channel_id]
        token = f"interaction-token-{next(self._ids)}"
        payload: dict[str, Any] = {
            "id": str(next(self._ids)),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data(),
            **({"message": message} if message is not None else {}),
            "channel_id": str(channel_id),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)} if guild_id else {"1": str(author_id)},
            "context": 0 if guild_id else 1,
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if guild_id is None:
            payload["user"] = USERS[author_id]
            payload["channel"] = {"id": str(channel_id), "type": 1, "recipients": [USERS[author_id]]}
        else:
            payload["guild_id"] = str(guild_id)
            payload["member"] = {**self._member(()), "user": USERS[author_id], "permissions": "0"}
            channel_kind = 11 if channel_id == THREAD_ID else 0
            payload["channel"] = {"id": str(channel_id), "type": channel_kind, "guild_id": str(guild_id)}
        self.interaction_responses[token] = []
        await self.dispatch("INTERACTION_CREATE", payload)
        return token

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway dispatch to every connected client, with the next sequence number."""
        await self._identified.wait()
        self._seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self._seq, "d": data})
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        for ws in list(self._sockets):
            if not ws.closed and self._receives(ws, guild_id):
                await ws.send_str(frame)

    def _receives(self, ws: web.WebSocketResponse, guild_id: int | None) -> bool:
        """Whether a connection gets an event of ``guild_id`` (``None``: a DM, for shard 0 only)."""
        shard = self._shards.get(ws)
        if shard is None:
            return True
        shard_id, num_shards = shard
        return shard_id == 0 if guild_id is None else shard_of(guild_id, num_shards) == shard_id

    def add_other_guild(self) -> None:
        """Serve the second server too (for sharding tests)."""
        self.guilds[OTHER_GUILD_ID] = other_guild_payload

    # -- queries -----------------------------------------------------------------------------------------

    def bot_messages(self, channel_id: int) -> list[Posted]:
        """The bot's messages in a channel, oldest first."""
        return [m for m in self.messages.values() if m.channel_id == channel_id and m.author_id == BOT_ID]

    def texts(self, channel_id: int) -> list[str]:
        """The current text of each of the bot's messages in a channel."""
        return [m.text for m in self.bot_messages(channel_id)]

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        regex = re.compile(pattern)
        return [c for c in self.calls if c.method == method and regex.fullmatch(c.path)]

    async def wait_until(self, condition: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
        """Poll ``condition`` until it holds; fail with ``what`` after ``within`` seconds."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            await asyncio.sleep(0.01)

    async def wait_for_reply(self, channel_id: int, count: int = 1, within: float = 5.0) -> list[str]:
        """Wait until the bot has ``count`` or more finished messages in a channel; return their texts."""

        def finished() -> bool:
            texts = self.texts(channel_id)
            return len(texts) >= count and not any(t.endswith(" ▌") for t in texts)

        await self.wait_until(finished, within, f"{count} finished bot message(s) in channel {channel_id}")
        return self.texts(channel_id)

    # -- gateway -----------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    self.identify.append(frame["d"])
                    shard = frame["d"].get("shard")
                    if shard is not None:
                        self._shards[ws] = (int(shard[0]), int(shard[1]))
                    await self._hello_ready(ws)
        finally:
            self._sockets.remove(ws)
            self._shards.pop(ws, None)
        return ws

    async def _hello_ready(self, ws: web.WebSocketResponse) -> None:
        ready = {
            "v": 10,
            "user": BOT_USER,
            "guilds": [{"id": str(guild), "unavailable": True} for guild in self._guilds_of(ws)],
            "session_id": "fake-session",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        if ws in self._shards:
            ready["shard"] = list(self._shards[ws])
        creates = [("GUILD_CREATE", self.guilds[guild]()) for guild in self._guilds_of(ws)]
        for event, data in (("READY", ready), *creates):
            self._seq += 1
            await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))
        self._identified.set()

    def _guilds_of(self, ws: web.WebSocketResponse) -> list[int]:
        return [guild for guild in self.guilds if self._receives(ws, guild)]

    # -- REST --------------------------------------------------------------------------------------------

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        # discord.py parses a body as JSON only when the content type is exactly "application/json".
        return web.Response(
            body=json.dumps(data).encode(),
            status=status,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body: Any = json.loads(raw) if raw and request.content_type == "application/json" else None
        call = Call(request.method, path, body, self.clock())
        self.calls.append(call)
        response = self._scripted_failure(request.method, path)
        if response is None:
            response = self._pace(request.method, path, call.at)
        if response is None:
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(path)
                if method == request.method and match:
                    response = await handler(body, **{k: v for k, v in match.groupdict().items() if v})
                    break
            else:
                response = self._json(
                    {"code": 0, "message": f"404: Not Found ({request.method} {path})"}, 404
                )
        call.status = response.status
        return response

    def _scripted_failure(self, method: str, path: str) -> web.Response | None:
        for failure in self._failures:
            if failure.times > 0 and failure.method == method and failure.path.fullmatch(path):
                failure.times -= 1
                return self._json(failure.body, failure.status, failure.headers)
        return None

    def _pace(self, method: str, path: str, at: float) -> web.Response | None:
        """With ``enforce_pace``: a 429 for a message create or edit that comes too fast, else count it."""
        match = _MESSAGE_PATH.fullmatch(path)
        if not self.enforce_pace or match is None or method != ("PATCH" if match.group(2) else "POST"):
            return None
        rate, per = self.channel_pace
        stamps = self._paced.setdefault(match.group(1), deque())
        while stamps and stamps[0] <= at - per:
            stamps.popleft()
        if len(stamps) >= rate:
            wait = math.ceil((stamps[-rate] + per - at) * 1000) / 1000
            body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, math.ceil(wait))),
                "X-RateLimit-Scope": "user",
            }
            return self._json(body, 429, headers)
        stamps.append(at)
        return None

    def rate_limited(self) -> list[Call]:
        """Calls answered 429 (pace enforcement or :meth:`rate_limit`)."""
        return [call for call in self.calls if call.status == 429]

    async def _me(self, body: Any) -> web.Response:
        return self._json(BOT_USER)

    async def _gateway_bot(self, body: Any) -> web.Response:
        """The gateway and the shard count Discord recommends (docs: "Get Gateway Bot")."""
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return self._json(
            {"url": self.gateway_url, "shards": self.recommended_shards, "session_start_limit": limit}
        )

    async def _application(self, body: Any) -> web.Response:
        return self._json(
            {
                "id": str(APP_ID),
                "name": "chatbot",
                "icon": None,
                "description": "A test bot",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": USERS[ALICE_ID],
                "summary": "",
                "verify_key": "0" * 64,
                "team": None,
                "flags": 0,
                "bot": BOT_USER,
            }
        )

    def _too_long(self, content: str) -> web.Response | None:
        if len(content) <= MAX_CHARS:
            return None
        return self._json(
            {
                "code": 50035,
                "message": "Invalid Form Body",
                "errors": {
                    "content": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_MAX_LENGTH",
                                "message": f"Must be {MAX_CHARS} or fewer in length.",
                            }
                        ]
                    }
                },
            },
            400,
        )

    async def _create_message(self, body: Any, channel: str) -> web.Response:
        content = str((body or {}).get("content") or "")
        too_long = self._too_long(content)
        if too_long is not None:
            return too_long
        reference = (body or {}).get("message_reference") or {}
        ref_id = reference.get("message_id")
        referenced = self.messages[int(ref_id)].payload if ref_id and int(ref_id) in self.messages else None
        payload = self._message_payload(
            next(self._ids), int(channel), BOT_USER, content, referenced=referenced
        )
        self._remember(payload)
        if self.echo_own_messages:
            await self.dispatch("MESSAGE_CREATE", payload)
        return self._json(payload)

    async def _edit_message(self, body: Any, channel: str, message: str) -> web.Response:
        posted = self.messages.get(int(message))
        if posted is None or posted.channel_id != int(channel):
            return self._json({"code": 10008, "message": "Unknown Message"}, 404)
        if posted.author_id != BOT_ID:
            return self._json(
                {"code": 50005, "message": "Cannot edit a message authored by another user"}, 403
            )
        body = body or {}
        if "components" in body and body["components"] and self.refuse_components > 0:
            self.refuse_components -= 1
            return self._json({"code": 50001, "message": "Missing Access"}, 403)
        if "components" in body:
            refused = self._bad_components(body["components"])
            if refused is not None:
                return refused
            posted.payload = {**posted.payload, "components": body["components"]}
        if "content" not in body and "components" in body:  # only the buttons change: the text stays
            posted.payload = {**posted.payload, "edited_timestamp": _now_iso()}
            return self._json(posted.payload)
        content = str(body.get("content") or "")
        too_long = self._too_long(content)
        if too_long is not None:
            return too_long
        posted.texts.append(content)
        posted.payload = {**posted.payload, "content": content, "edited_timestamp": _now_iso()}
        return self._json(posted.payload)

    # -- message components and their interactions (feedback buttons) ----------------------------------
    # https://discord.com/developers/docs/components/reference#action-row and #button: up to 5 action rows,
    # up to 5 buttons a row, custom_id 1-100 characters; a click is an INTERACTION_CREATE of type 3
    # (MESSAGE_COMPONENT) carrying the message and data.custom_id / component_type
    # (https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object).

    def _bad_components(self, rows: Any) -> web.Response | None:
        problem = not isinstance(rows, list) or len(rows) > 5
        for row in rows if isinstance(rows, list) else []:
            buttons = row.get("components") or []
            problem = problem or row.get("type") != 1 or not 0 < len(buttons) <= 5
            for button in buttons:
                custom_id = str(button.get("custom_id") or "")
                problem = problem or (button.get("style") != 5 and not 1 <= len(custom_id) <= 100)
        if not problem:
            return None
        return self._json({"code": 50035, "message": "Invalid Form Body", "errors": {"components": {}}}, 400)

    @staticmethod
    def buttons(posted: Posted) -> list[str]:
        """The custom_ids of the buttons under a message, in order."""
        rows = posted.payload.get("components") or []
        return [str(b.get("custom_id")) for row in rows for b in row.get("components") or []]

    async def click(self, posted: Posted, custom_id: str, *, author_id: int = ALICE_ID) -> str:
        """Dispatch the INTERACTION_CREATE a click on one of ``posted``'s buttons sends; return its token."""
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, lambda: data, posted.channel_id, author_id, message=posted.payload)

    async def _typing(self, body: Any, channel: str) -> web.Response:
        return web.Response(status=204)

    # -- threads -------------------------------------------------------------------------------------------

    async def _start_thread(self, body: Any, channel: str, message: str) -> web.Response:
        """Start Thread from Message (https://discord.com/developers/docs/resources/message#start-thread-from-message,
        discord.py's ``HTTPClient.start_thread_with_message``): ``name`` of 1-100 characters; the thread's id is
        the message's; one thread per message (code 160004); only in a server's text channel (50024).
        Answers the thread channel (type 11, owned by the bot) and dispatches THREAD_CREATE."""
        name = str((body or {}).get("name") or "")
        if not 1 <= len(name) <= 100:
            error = {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."}
            return self._json(
                {"code": 50035, "message": "Invalid Form Body", "errors": {"name": {"_errors": [error]}}}, 400
            )
        posted = self.messages.get(int(message))
        if posted is None or posted.channel_id != int(channel):
            return self._json({"code": 10008, "message": "Unknown Message"}, 404)
        guild = self.channel_guilds.get(int(channel))
        if guild is None or int(channel) in self.threads or int(channel) == THREAD_ID:
            return self._json({"code": 50024, "message": "Cannot execute action on this channel type"}, 400)
        if int(message) in self.threads:
            return self._json(
                {"code": 160004, "message": "A thread has already been created for this message"}, 400
            )
        thread = {
            "id": message,
            "type": 11,
            "name": name,
            "guild_id": str(guild),
            "parent_id": channel,
            "owner_id": str(BOT_ID),
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": int((body or {}).get("auto_archive_duration") or 1440),
                "archive_timestamp": _now_iso(),
                "locked": False,
            },
        }
        self.threads[int(message)] = thread
        self.channel_guilds[int(message)] = guild
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return self._json(thread)

    async def _get_commands(self, body: Any, guild: str = "global") -> web.Response:
        return self._json(self.commands.get(guild, []))

    async def _put_commands(self, body: Any, guild: str = "global") -> web.Response:
        registered = [
            {
                "id": str(next(self._ids)),
                "application_id": str(APP_ID),
                "version": "1",
                "type": 1,
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                **command,
            }
            for command in body or []
        ]
        self.commands[guild] = registered
        return self._json(registered)

    async def _interaction_callback(self, body: Any, token: str) -> web.Response:
        self.interaction_responses.setdefault(token, []).append(body)
        interaction: dict[str, Any] = {"id": str(next(self._ids)), "type": 2}
        result: dict[str, Any] = {"interaction": interaction}
        data = (body or {}).get("data") or {}
        interaction["response_message_ephemeral"] = bool(data.get("flags", 0) & 64)
        if body and body.get("type") == 4:
            message = self._message_payload(next(self._ids), 0, BOT_USER, str(data.get("content", "")))
            interaction["response_message_id"] = message["id"]
            result["resource"] = {"type": 4, "message": message}
        elif body and body.get("type") == 5:
            interaction["response_message_loading"] = True
            result["resource"] = {"type": 5}
        return self._json(result)

    async def _followup(self, body: Any, token: str) -> web.Response:
        self.interaction_responses.setdefault(token, []).append({"followup": True, **(body or {})})
        return self._json(
            self._message_payload(next(self._ids), 0, BOT_USER, str((body or {}).get("content", "")))
        )

    # -- payloads ----------------------------------------------------------------------------------------

    @staticmethod
    def _member(roles: Iterable[int]) -> dict[str, Any]:
        return {
            "roles": [str(r) for r in roles],
            "joined_at": ISO_EPOCH,
            "deaf": False,
            "mute": False,
            "flags": 0,
        }

    def _message_payload(
        self,
        message_id: int,
        channel_id: int,
        author: dict[str, Any],
        content: str,
        *,
        mentions: list[dict[str, Any]] | None = None,
        referenced: dict[str, Any] | None = None,
        roles: Iterable[int] = (),
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions or [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        guild_id = self.channel_guilds.get(channel_id)
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["member"] = self._member([BOT_ROLE_ID] if author["id"] == BOT_USER["id"] else roles)
        if referenced is not None:
            payload["type"] = 19
            payload["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                **({"guild_id": referenced["guild_id"]} if "guild_id" in referenced else {}),
            }
            payload["referenced_message"] = referenced
        return payload

    def _remember(self, payload: dict[str, Any]) -> None:
        reference = payload.get("message_reference")
        self.messages[int(payload["id"])] = Posted(
            id=int(payload["id"]),
            channel_id=int(payload["channel_id"]),
            author_id=int(payload["author"]["id"]),
            texts=[payload["content"]],
            reference_id=int(reference["message_id"]) if reference else None,
            payload=payload,
        )
