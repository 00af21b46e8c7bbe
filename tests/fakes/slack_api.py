"""A fake Slack on 127.0.0.1 for the real slack_sdk / slack_bolt: the Web API, event delivery, Socket Mode.

Web API (``POST /api/<method>``, JSON or form bodies, like slack_sdk sends them): ``auth.test``,
``chat.postMessage``, ``chat.update`` (with blocks), ``chat.postEphemeral`` and ``apps.connections.open``;
button clicks as signed ``block_actions`` interactions (:meth:`FakeSlack.block_action`). It keeps each message's current text
(and every text it had), answers ``msg_too_long`` above 40,000 characters like Slack, answers HTTP 429
with ``Retry-After`` on demand (:meth:`FakeSlack.rate_limit`), and records every call with its time.

Opt-in (``enforce_pace=True``, off by default): Slack's pace, as ../shared/PLATFORMS.md gives it.
``chat.update`` is Tier 3, about 50 a minute for the workspace (this fake is one workspace);
``chat.postMessage`` about one a second per channel. A call that comes too fast is answered HTTP 429
``ratelimited`` with ``Retry-After`` (whole seconds) and is not carried out.

Native AI features (see the section "native AI features" below): ``assistant.threads.setStatus``,
``setSuggestedPrompts``, ``setTitle`` and ``chat.startStream`` / ``appendStream`` / ``stopStream``, with their
payload shapes and errors; :meth:`FakeSlack.refuse` makes a workspace refuse any method.

Events: :meth:`FakeSlack.post_event` signs an Events API envelope the way Slack does and POSTs it to the
app; with ``echo=True`` the fake also sends the app its own messages back (``message`` with ``bot_id``
after a post, ``message_changed`` after an update), as Slack does. In Socket Mode the same envelopes go
over the websocket that ``apps.connections.open`` hands out, and the app's acks are recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.fakes.slack_files import SlackFiles

SLACK_MAX_TEXT = 40_000
STREAM_MAX_APPEND = 12_000  # markdown_text per chat.startStream / appendStream / stopStream call
SIGNING_SECRET = "fake-signing-secret-0123456789"
BOT_TOKEN = "xoxb-fake-bot-token-0123456789"
APP_TOKEN = "xapp-fake-app-token-0123456789"
TEAM = "T0TEAM"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"


@dataclass(frozen=True)
class Pace:
    """At most ``rate`` calls in any window of ``per`` seconds."""

    rate: int
    per: float


@dataclass
class Call:
    """One Web API call as the fake saw it."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    error: str | None = None


@dataclass
class Message:
    """A message the bot posted: its current text, every text it had, and where it is."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    versions: list[str] = field(default_factory=list)
    blocks: list[dict[str, Any]] | None = None  # Block Kit blocks, when an update set them
    streaming: bool = False  # a native stream still open (chat.startStream, not yet stopped)


def sign(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: ``v0=`` + HMAC-SHA256(secret, ``v0:{timestamp}:{body}``)."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


def mention(
    text: str,
    *,
    channel: str = "C0GENERAL",
    ts: str,
    user: str = "U0ALICE",
    thread_ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An ``app_mention`` event (``text`` should contain ``<@U0BOT>``)."""
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": TEAM,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def message(
    text: str,
    *,
    channel: str = "C0GENERAL",
    ts: str,
    user: str | None = "U0ALICE",
    thread_ts: str | None = None,
    channel_type: str = "channel",
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` event as ``message.channels`` / ``message.im`` deliver it."""
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": TEAM,
    }
    if user is not None:
        event["user"] = user
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def assistant_thread_started(
    *, channel: str = "D0ALICE", thread_ts: str, user: str = "U0ALICE"
) -> dict[str, Any]:
    """An ``assistant_thread_started`` event, as https://docs.slack.dev/reference/events/assistant_thread_started
    shows it: a user opened the app's assistant panel (a DM thread)."""
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": {"channel_id": "C0GENERAL", "team_id": TEAM, "enterprise_id": None},
            "channel_id": channel,
            "thread_ts": thread_ts,
        },
        "event_ts": thread_ts,
    }


@dataclass
class FakeSlack:
    """The server and its knobs. ``await start()`` returns the Web API base URL (``.../api/``)."""

    signing_secret: str = SIGNING_SECRET
    bot_token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    echo: bool = False
    app_url: str | None = None  # where HTTP-mode events go: http://127.0.0.1:<port>/slack/events
    # Answer 429 + Retry-After when chat calls come faster than Slack allows (off: tests script 429s).
    enforce_pace: bool = False
    update_pace: Pace = Pace(50, 60.0)  # chat.update, for the whole workspace
    post_pace: Pace = Pace(1, 1.0)  # chat.postMessage, per channel
    calls: list[Call] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)  # chat.postEphemeral: what one user saw
    refused_blocks: set[str] = field(default_factory=set)  # block types chat.update answers invalid_blocks to
    base_url: str = ""
    _limits: dict[str, list[float]] = field(default_factory=dict)
    _paced: dict[str, deque[float]] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _event_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _root: str = ""
    files: SlackFiles = field(default_factory=lambda: SlackFiles(BOT_TOKEN, TEAM))  # url_private, files.info
    _refusals: dict[str, list[str]] = field(default_factory=dict)
    _refused_for_good: dict[str, str] = field(default_factory=dict)

    # ----- lifecycle

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/link/", self._socket_mode)
        app.router.add_get("/files-pri/{team_file}/{rest:.+}", self.files.download)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk sends files.info as a GET (query string)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._root = f"127.0.0.1:{port}"
        self.files.root = self._root
        self.base_url = f"http://{self._root}/api/"
        return self.base_url

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----- knobs and views

    def rate_limit(self, method: str, times: int = 1, retry_after: float = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and ``Retry-After``."""
        self._limits.setdefault(method, []).extend([retry_after] * times)

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def in_thread(self, channel: str, thread_ts: str | None) -> list[Message]:
        return [m for m in self.messages if m.channel == channel and m.thread_ts == thread_ts]

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    # ----- the Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        # slack_sdk sends some methods' arguments in the query string (``params=``, e.g. setTitle); Slack
        # reads both
        params = {**request.query, **params}
        call = Call(method, dict(params), time.monotonic())
        self.calls.append(call)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token:
            return self._fail(call, "not_authed")
        if token != (self.app_token if method == "apps.connections.open" else self.bot_token):
            return self._fail(call, "invalid_auth")
        pending = self._limits.get(method)
        retry_after = pending.pop(0) if pending else self._pace(method, params)
        if retry_after is not None:
            call.status, call.error = 429, "ratelimited"
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": f"{retry_after:g}"}
            )
        refused = self._refused(method)
        if refused is not None:
            return self._fail(call, refused)
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "apps.connections.open": self._connections_open,
            "files.info": self._files_info,
            **self._native_handlers(),
        }.get(method)
        if handler is None:
            return self._fail(call, "unknown_method")
        return handler(call, params)

    def _pace(self, method: str, params: dict[str, Any]) -> float | None:
        """With ``enforce_pace``: the Retry-After for a chat call that comes too fast, else count it."""
        if not self.enforce_pace or method not in ("chat.update", "chat.postMessage"):
            return None
        if method == "chat.update":
            key, pace = method, self.update_pace
        else:
            key, pace = f"{method}:{params.get('channel')}", self.post_pace
        now = time.monotonic()
        stamps = self._paced.setdefault(key, deque())
        while stamps and stamps[0] <= now - pace.per:
            stamps.popleft()
        if len(stamps) >= pace.rate:
            return max(1, math.ceil(stamps[-pace.rate] + pace.per - now))
        stamps.append(now)
        return None

    def rate_limited(self) -> list[Call]:
        """Calls answered HTTP 429 (pace enforcement or :meth:`rate_limit`)."""
        return [call for call in self.calls if call.status == 429]

    @staticmethod
    def _fail(call: Call, error: str) -> web.Response:
        call.error = error
        return web.json_response({"ok": False, "error": error})

    def _auth_test(self, call: Call, params: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake Team",
                "user": "chatbot",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        )

    def _post_message(self, call: Call, params: dict[str, Any]) -> web.Response:
        text = str(params.get("text") or "")
        if len(text) > SLACK_MAX_TEXT:
            return self._fail(call, "msg_too_long")
        channel = str(params.get("channel") or "")
        if not channel:
            return self._fail(call, "channel_not_found")
        ts = f"1700000000.{next(self._ts):06d}"
        thread_ts = params.get("thread_ts") or None
        posted = Message(channel, ts, thread_ts, text, [text])
        self.messages.append(posted)
        body = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": text, "ts": ts}
        if thread_ts:
            body["thread_ts"] = thread_ts
        self._echo({**body, "channel": channel, "channel_type": _channel_type(channel)})
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": body})

    def _update(self, call: Call, params: dict[str, Any]) -> web.Response:
        text = str(params.get("text") or "")
        if len(text) > SLACK_MAX_TEXT:
            return self._fail(call, "msg_too_long")
        found = self.find(str(params.get("channel")), str(params.get("ts")))
        if found is None:
            return self._fail(call, "message_not_found")
        blocks = params.get("blocks")
        if isinstance(blocks, str):  # a form body carries the blocks as a JSON string
            blocks = json.loads(blocks)
        if blocks is not None and self._invalid_blocks(blocks):
            return self._fail(call, "invalid_blocks")
        previous = found.text
        found.text = text
        if text != previous or blocks is None:  # an update that only adds blocks shows no new text
            found.versions.append(text)
        if blocks is not None:
            found.blocks = blocks
        self._echo(
            {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "channel": found.channel,
                "channel_type": _channel_type(found.channel),
                "ts": f"1700000000.{next(self._ts):06d}",
                "message": {
                    "type": "message",
                    "user": BOT_USER,
                    "bot_id": BOT_ID,
                    "text": text,
                    "ts": found.ts,
                },
                "previous_message": {"type": "message", "user": BOT_USER, "text": previous, "ts": found.ts},
            }
        )
        return web.json_response({"ok": True, "channel": found.channel, "ts": found.ts, "text": text})

    def _files_info(self, call: Call, params: dict[str, Any]) -> web.Response:
        found = self.files.info(params)
        if found is None:
            return self._fail(call, "file_not_found")
        return web.json_response({"ok": True, "file": found})

    # ----- feedback buttons: blocks, ephemeral notices and block_actions
    # Block limits from https://docs.slack.dev/reference/block-kit/blocks/section-block (text up to 3,000
    # characters) and .../context-actions-block (up to 5 elements); chat.postEphemeral from
    # https://docs.slack.dev/reference/methods/chat.postEphemeral (seen by one user, answers message_ts).

    def _invalid_blocks(self, blocks: Any) -> bool:
        if not isinstance(blocks, list) or len(blocks) > 50:
            return True
        for block in blocks:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind is None or kind in self.refused_blocks:
                return True
            if kind == "section" and len(str((block.get("text") or {}).get("text", ""))) > 3000:
                return True
            if kind in ("actions", "context_actions") and not 0 < len(block.get("elements") or []) <= 5:
                return True
        return False

    def _post_ephemeral(self, call: Call, params: dict[str, Any]) -> web.Response:
        if not params.get("channel") or not params.get("user"):
            return self._fail(
                call, "channel_not_found" if not params.get("channel") else "user_not_in_channel"
            )
        self.ephemeral.append(dict(params))
        return web.json_response({"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"})

    def block_action(
        self, posted: Message, action: dict[str, Any], *, user: str = "U0ALICE"
    ) -> dict[str, Any]:
        """The ``block_actions`` payload a click on ``posted``'s button sends, as
        https://docs.slack.dev/reference/interaction-payloads/block_actions-payload shows it."""
        shown: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "text": posted.text,
            "ts": posted.ts,
            "blocks": posted.blocks or [],
        }
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": posted.ts,
            "channel_id": posted.channel,
            "is_ephemeral": False,
        }
        if posted.thread_ts:
            shown["thread_ts"] = container["thread_ts"] = posted.thread_ts
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A0APP",
            "token": "legacy-verification-token",
            "container": container,
            "trigger_id": f"{next(self._event_ids)}.trigger",
            "team": {"id": TEAM, "domain": "fake"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": posted.channel, "name": "general"},
            "message": shown,
            "state": {"values": {}},
            "response_url": "https://hooks.slack.com/actions/T0TEAM/1/fake",
            "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
        }

    @staticmethod
    def clicked(posted: Message, positive: bool) -> dict[str, Any]:
        """The ``actions`` item for a click on one of ``posted``'s feedback buttons (feedback_buttons element:
        https://docs.slack.dev/reference/block-kit/block-elements/feedback-buttons-element; a plain button's
        item carries its own ``action_id`` and ``value``)."""
        for block in posted.blocks or []:
            for element in block.get("elements") or []:
                if element.get("type") == "feedback_buttons":
                    button = element["positive_button" if positive else "negative_button"]
                    return {
                        "type": "feedback_buttons",
                        "action_id": element["action_id"],
                        "block_id": block.get("block_id", "fb"),
                        "value": button["value"],
                    }
                if element.get("type") == "button" and element["value"].endswith(
                    ":up" if positive else ":down"
                ):
                    return {
                        "type": "button",
                        "action_id": element["action_id"],
                        "block_id": block.get("block_id", "fb"),
                        "text": element["text"],
                        "value": element["value"],
                    }
        raise AssertionError(f"no feedback button under {posted.ts}")

    async def post_interaction(self, payload: dict[str, Any]) -> tuple[int, str]:
        """POST an interaction to the app the way Slack does: form-encoded ``payload=<json>``, signed."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post_body(body, content_type="application/x-www-form-urlencoded")

    async def push_interaction(self, payload: dict[str, Any]) -> str:
        """Send an interaction over Socket Mode (envelope type ``interactive``); the envelope id."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection")
        envelope_id = f"env-{next(self._event_ids)}"
        frame = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": "interactive",
            "accepts_response_payload": True,
        }
        await self._sockets[-1].send_str(json.dumps(frame))
        return envelope_id

    # ----- native AI features

    def refuse(self, method: str, error: str = "not_allowed", times: int | None = None) -> None:
        """Answer ``method`` with ``{"ok": false, "error": error}`` (HTTP 200, as Slack does): the next
        ``times`` calls, or every call when ``times`` is None (a workspace that does not allow it)."""
        if times is None:
            self._refused_for_good[method] = error
        else:
            self._refusals.setdefault(method, []).extend([error] * times)

    def _refused(self, method: str) -> str | None:
        pending = self._refusals.get(method)
        if pending:
            return pending.pop(0)
        return self._refused_for_good.get(method)

    def _native_handlers(self) -> dict[str, Any]:
        return {
            "assistant.threads.setStatus": self._set_status,
            "assistant.threads.setSuggestedPrompts": self._set_suggested_prompts,
            "assistant.threads.setTitle": self._set_title,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
        }

    def statuses(self, channel: str, thread_ts: str) -> list[str]:
        """Every status line set on a thread, in order ("" clears it)."""
        return [
            str(c.params.get("status"))
            for c in self.calls_of("assistant.threads.setStatus")
            if c.error is None
            and c.status == 200
            and c.params.get("channel_id") == channel
            and c.params.get("thread_ts") == thread_ts
        ]

    def _set_status(self, call: Call, params: dict[str, Any]) -> web.Response:
        # https://docs.slack.dev/reference/methods/assistant.threads.setStatus: channel_id, thread_ts and
        # status (an empty string clears it) are required; answers {"ok": true}
        if not params.get("channel_id") or not params.get("thread_ts") or "status" not in params:
            return self._fail(call, "invalid_arguments")
        return web.json_response({"ok": True})

    def _set_suggested_prompts(self, call: Call, params: dict[str, Any]) -> web.Response:
        # https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts: prompts is a list
        # of {"title", "message"}, at most four
        prompts = params.get("prompts")
        if not params.get("channel_id") or not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            return self._fail(call, "invalid_arguments")
        if not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
            return self._fail(call, "invalid_arguments")
        return web.json_response({"ok": True})

    def _set_title(self, call: Call, params: dict[str, Any]) -> web.Response:
        # https://docs.slack.dev/reference/methods/assistant.threads.setTitle (sent form-encoded by the SDK)
        if not params.get("channel_id") or not params.get("thread_ts") or not params.get("title"):
            return self._fail(call, "invalid_arguments")
        return web.json_response({"ok": True})

    def _start_stream(self, call: Call, params: dict[str, Any]) -> web.Response:
        # https://docs.slack.dev/reference/methods/chat.startStream: thread_ts to reply to; recipient_team_id
        # and recipient_user_id "required when streaming to channels"; markdown_text up to 12,000 characters
        channel = str(params.get("channel") or "")
        thread_ts = params.get("thread_ts")
        if not channel:
            return self._fail(call, "channel_not_found")
        if not thread_ts:
            return self._fail(call, "invalid_arguments")
        if not channel.startswith("D") and not (
            params.get("recipient_team_id") and params.get("recipient_user_id")
        ):
            return self._fail(call, "invalid_arguments")
        text = str(params.get("markdown_text") or "")
        if len(text) > STREAM_MAX_APPEND:
            return self._fail(call, "msg_too_long")
        ts = f"1700000000.{next(self._ts):06d}"
        self.messages.append(Message(channel, ts, str(thread_ts), text, [text], streaming=True))
        return web.json_response({"ok": True, "channel": channel, "ts": ts})

    def _streaming(self, call: Call, params: dict[str, Any]) -> Message | web.Response:
        found = self.find(str(params.get("channel")), str(params.get("ts")))
        if found is None:
            return self._fail(call, "message_not_found")
        if not found.streaming:
            return self._fail(call, "message_not_in_streaming_state")
        text = str(params.get("markdown_text") or "")
        if len(text) > STREAM_MAX_APPEND:
            return self._fail(call, "msg_too_long")
        if len(found.text + text) > SLACK_MAX_TEXT:
            return self._fail(call, "msg_too_long")
        return found

    def _append_stream(self, call: Call, params: dict[str, Any]) -> web.Response:
        # https://docs.slack.dev/reference/methods/chat.appendStream: markdown_text (required) "is what
        # will be appended to the message received so far"
        found = self._streaming(call, params)
        if isinstance(found, web.Response):
            return found
        if not params.get("markdown_text"):
            return self._fail(call, "invalid_arguments")
        found.text += str(params["markdown_text"])
        found.versions.append(found.text)
        return web.json_response({"ok": True, "channel": found.channel, "ts": found.ts})

    def _stop_stream(self, call: Call, params: dict[str, Any]) -> web.Response:
        # https://docs.slack.dev/reference/methods/chat.stopStream: optional last markdown_text; the message
        # is an ordinary message from then on (chat.update works on it)
        found = self._streaming(call, params)
        if isinstance(found, web.Response):
            return found
        if params.get("markdown_text"):
            found.text += str(params["markdown_text"])
            found.versions.append(found.text)
        found.streaming = False
        return web.json_response(
            {
                "ok": True,
                "channel": found.channel,
                "ts": found.ts,
                "message": {"text": found.text, "ts": found.ts},
            }
        )

    def _connections_open(self, call: Call, params: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "url": f"ws://{self._root}/link/?ticket=fake"})

    # ----- events

    def envelope(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """An Events API ``event_callback`` envelope around ``event``."""
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._event_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }

    async def post_event(
        self,
        payload: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        raw: bool = False,
    ) -> tuple[int, str]:
        """Sign and POST an event (or, with ``raw``, any payload) to the app; the HTTP status and body."""
        if self.app_url is None:
            raise RuntimeError("set app_url first")
        body = json.dumps(payload if raw else self.envelope(payload, event_id))
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(self.signing_secret if secret is None else secret, stamp, body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.app_url, data=body.encode(), headers=headers) as response,
        ):
            return response.status, await response.text()

    async def post_body(
        self,
        body: bytes,
        *,
        content_type: str = "application/json",
        secret: str | None = None,
        signed: bool = True,
        timestamp: str | None = None,
    ) -> tuple[int, str]:
        """POST any bytes to the app, signed the way Slack signs (the raw body bytes; see
        https://docs.slack.dev/authentication/verifying-requests-from-slack/) unless ``signed`` is false:
        for bodies Slack would never send, which the app must still answer cleanly."""
        if self.app_url is None:
            raise RuntimeError("set app_url first")
        stamp = str(int(time.time())) if timestamp is None else timestamp
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp}
        if signed:
            key = (self.signing_secret if secret is None else secret).encode()
            digest = hmac.new(key, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
            headers["X-Slack-Signature"] = f"v0={digest}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.app_url, data=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def push_event(self, event: dict[str, Any], event_id: str | None = None) -> str:
        """Send an event over the Socket Mode websocket; returns the envelope id the app should ack."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection")
        envelope_id = f"env-{next(self._event_ids)}"
        frame = {
            "envelope_id": envelope_id,
            "payload": self.envelope(event, event_id),
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(frame))
        return envelope_id

    def _echo(self, event: dict[str, Any]) -> None:
        if not self.echo:
            return

        async def deliver() -> None:
            if self.app_url is not None:
                await self.post_event(event)
            elif self._sockets:
                await self.push_event(event)

        task = asyncio.get_running_loop().create_task(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP"}})
        )
        try:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    self.acks.append(json.loads(frame.data))
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def socket_connected(self) -> bool:
        return bool(self._sockets)


def _channel_type(channel: str) -> str:
    return "im" if channel.startswith("D") else "channel"
