"""A fake Telegram Bot API on 127.0.0.1 for the real python-telegram-bot.

Serves ``POST /bot<token>/<method>`` (form-encoded; non-string values arrive as JSON strings) and answers
``{"ok": true, "result": ...}`` or a non-2xx ``{"ok": false, "error_code", "description"[, "parameters"]}``
the way Telegram does. Methods: getMe, deleteWebhook, setWebhook, getUpdates (long polling, updates kept
until confirmed by ``offset``), sendMessage, editMessageText, sendChatAction, sendMessageDraft,
setMyCommands, getMyCommands, editMessageReplyMarkup, answerCallbackQuery (and clicks: :meth:`click`).

What it enforces like Telegram: 4,096 characters (UTF-16 units, after HTML parsing) per message, "message
is not modified" on an edit to the same content, "can't parse entities" on malformed HTML, "message to
edit not found", getUpdates refused while a webhook is set. What tests can script: errors on the next calls
of a method (429 with ``retry_after``, any 400), refusing every formatted text (``reject_markup``).

Opt-in (``enforce_pace=True``, off by default): Telegram's sending pace, as ../shared/PLATFORMS.md gives it.
sendMessage and editMessageText share it: one a second per chat after a short burst of three (a token
bucket: Telegram's Bot FAQ says "avoid sending more than one message per second in a particular chat. We may
allow short bursts that go over this limit"; issue 19 takes the burst as three calls), 20 a minute per
group, 30 a second overall. A call that comes too fast is answered 429 "Too Many Requests" with ``retry_after`` (whole
seconds, as Telegram sends it) and is not carried out.

Tests inject users' messages (:meth:`FakeTelegram.user_message`), which get entities like a Telegram
client would add them (``/command`` and ``@mention``, offsets in UTF-16 units), read what users see
(:meth:`FakeTelegram.bot_messages`), and check every call with its arrival time (:attr:`FakeTelegram.calls`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.telegram_files import FileApiError, TelegramFiles

MAX_TEXT = 4096
STRING_PARAMS = frozenset({"text", "parse_mode", "action", "url", "secret_token", "caption"})
ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span", "tg-spoiler"}
    | {"blockquote", "tg-emoji"}
)
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}\b")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z][A-Za-z0-9_]{3,31})?")
PACED_METHODS = frozenset({"sendMessage", "editMessageText"})
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def utf16_offset(text: str, index: int) -> int:
    return utf16_len(text[:index])


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass
class Fault:
    """A scripted error for the next ``times`` calls of ``method`` (optionally only in one chat)."""

    method: str
    status: int
    description: str
    retry_after: float | None = None
    chat_id: int | None = None
    times: int = 1


@dataclass(frozen=True)
class Pace:
    """At most ``rate`` calls in any window of ``per`` seconds."""

    rate: int
    per: float


@dataclass(frozen=True)
class Burst:
    """Up to ``burst`` calls at once, then one per ``interval`` seconds (a token bucket)."""

    burst: int
    interval: float


@dataclass
class ApiCall:
    """One request as the fake received it: ``at`` is ``time.monotonic()`` on arrival."""

    method: str
    params: dict[str, Any]
    at: float
    ok: bool = True
    error: str = ""
    status: int = 200


@dataclass
class StoredMessage:
    """A message in a chat. ``text`` is what users see now; ``versions`` every text it has shown."""

    chat_id: int
    message_id: int
    text: str
    from_bot: bool
    sender: dict[str, Any]
    parse_mode: str | None = None
    markup: str | None = None  # the text as sent, with its HTML
    thread_id: int | None = None
    reply_to: int | None = None
    versions: list[str] = field(default_factory=list)
    changed_at: list[float] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None  # an inline keyboard under the message (feedback buttons)

    def as_json(self, chat: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.sender,
            "text": self.text,
        }
        if self.thread_id is not None:
            data["message_thread_id"] = self.thread_id
            data["is_topic_message"] = True
        if self.reply_markup:
            data["reply_markup"] = self.reply_markup
        return data


class _TelegramHTML(HTMLParser):
    """Telegram's HTML subset: known tags only, properly nested; yields the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise ApiError(
                400,
                f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"{tag}\"",
            )
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def parse_html(markup: str) -> str:
    parser = _TelegramHTML()
    parser.feed(markup)
    parser.close()
    if parser.stack:
        raise ApiError(
            400,
            f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"{parser.stack[-1]}\"",
        )
    return "".join(parser.parts)


@dataclass
class FakeTelegram:
    """The server and its knobs. ``await start()`` returns the root URL (``TELEGRAM_BASE_URL``)."""

    token: str = "123456:TEST-fake-token-abcdef"
    username: str = "test_bot"
    reject_markup: bool = False
    # Answer 429 + retry_after when sends and edits come faster than Telegram allows (off: tests script 429s).
    enforce_pace: bool = False
    chat_pace: tuple[Pace, ...] = ()  # every chat, as sliding windows ...
    chat_burst: Burst | None = Burst(3, 1.0)  # ... and as a token bucket
    group_pace: tuple[Pace, ...] = (Pace(20, 60.0),)  # groups, on top of chat_pace
    global_pace: tuple[Pace, ...] = (Pace(30, 1.0),)  # the bot as a whole
    calls: list[ApiCall] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    files: TelegramFiles = field(default_factory=TelegramFiles)  # getFile and /file/bot<token>/<path>
    messages: dict[int, list[StoredMessage]] = field(default_factory=dict)
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    callback_answers: list[dict[str, Any]] = field(default_factory=list)  # answerCallbackQuery calls
    commands: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    root: str = ""
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _next_update: int = 1
    _confirmed: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event | None = None
    _closing: asyncio.Event | None = None
    _paced: dict[tuple[object, ...], deque[float]] = field(default_factory=dict)
    _bucket_full_at: dict[object, float] = field(default_factory=dict)  # per chat: when its bucket is full

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    @property
    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Test Bot", "username": self.username}

    # -- server ----------------------------------------------------------------------------------

    async def start(self) -> str:
        self._arrived = asyncio.Event()
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.root = f"http://127.0.0.1:{port}"
        return self.root

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _decode(name: str, value: str) -> Any:
        if name in STRING_PARAMS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        method = request.match_info["method"]
        form = await request.post() if request.can_read_body else {}
        params = {key: self._decode(key, str(value)) for key, value in form.items()}
        call = ApiCall(method, params, at)
        self.calls.append(call)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            self._scripted(method, params)
            self._pace(method, params)
            result = await self._dispatch(method, params)
        except ApiError as exc:
            call.ok, call.error, call.status = False, exc.description, exc.status
            body: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.status)
        return web.json_response({"ok": True, "result": result})

    def _scripted(self, method: str, params: dict[str, Any]) -> None:
        for fault in self.faults:
            if fault.method == method and fault.times > 0 and fault.chat_id in (None, params.get("chat_id")):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                parameters = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
                raise ApiError(fault.status, fault.description, parameters)

    def _pace(self, method: str, params: dict[str, Any]) -> None:
        """With ``enforce_pace``, refuse a send or edit that comes too fast (429), else count it."""
        if not self.enforce_pace or method not in PACED_METHODS:
            return
        at = time.monotonic()
        chat_id = params.get("chat_id")
        known = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        private = known["type"] == "private" if known else isinstance(chat_id, int) and chat_id > 0
        windows: list[tuple[tuple[object, ...], Pace]] = [(("chat", chat_id, p), p) for p in self.chat_pace]
        if not private:
            windows += [(("group", chat_id, p), p) for p in self.group_pace]
        windows += [(("global", p), p) for p in self.global_pace]
        wait = 0.0
        for key, pace in windows:
            stamps = self._paced.setdefault(key, deque())
            while stamps and stamps[0] <= at - pace.per:
                stamps.popleft()
            if len(stamps) >= pace.rate:
                wait = max(wait, stamps[-pace.rate] + pace.per - at)
        burst = self.chat_burst
        if burst is not None:
            full_at = self._bucket_full_at.get(chat_id, at)
            wait = max(wait, full_at - (burst.burst - 1) * burst.interval - at)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        for key, _pace in windows:
            self._paced[key].append(at)
        if burst is not None:
            self._bucket_full_at[chat_id] = max(self._bucket_full_at.get(chat_id, at), at) + burst.interval

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": lambda p: self.bot_user,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "sendChatAction": lambda p: True,
            "sendMessageDraft": self._send_message_draft,
            "setMyCommands": self._set_my_commands,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "getMyCommands": lambda p: self.commands,
            "getFile": self._get_file,
        }
        if method == "getUpdates":
            return await self._get_updates(params)
        handler = handlers.get(method)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return handler(params)

    # -- methods ---------------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.StreamResponse:
        return await self.files.download(request, self.token)

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.files.get_file(params)
        except FileApiError as exc:
            raise ApiError(exc.status, exc.description) from None

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = dict(params)
        return True

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands = list(params.get("commands") or [])
        return True

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        if offset > 0:
            self._confirmed = max(self._confirmed, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= self._confirmed]
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        assert self._arrived is not None and self._closing is not None
        while True:
            arrived = self._arrived
            ready = [u for u in self._updates if u["update_id"] >= self._confirmed][:limit]
            if ready or self._closing.is_set():
                return ready
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            waiter = asyncio.ensure_future(arrived.wait())
            closer = asyncio.ensure_future(self._closing.wait())
            _done, pending = await asyncio.wait(
                {waiter, closer}, timeout=remaining, return_when="FIRST_COMPLETED"
            )
            for task in pending:
                task.cancel()

    def _visible(self, params: dict[str, Any]) -> tuple[str, str | None, str | None]:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        parse_mode = params.get("parse_mode") or None
        if parse_mode is None:
            visible, markup = text, None
        elif str(parse_mode).upper() != "HTML":
            raise ApiError(
                400, f"Bad Request: can't parse entities: unsupported parse mode {parse_mode} in the fake"
            )
        else:
            if self.reject_markup:
                raise ApiError(
                    400, 'Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 0'
                )
            visible, markup = parse_html(text), text
        visible = visible.strip()  # Telegram trims the text it shows
        if not visible:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return visible, parse_mode, markup

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id not in self.chats:
            self.chats[chat_id] = (
                {"id": chat_id, "type": "private", "first_name": "User"}
                if chat_id > 0
                else {"id": chat_id, "type": "supergroup", "title": "Group"}
            )
        return self.chats[chat_id]

    def _next_message_id(self, chat_id: int) -> int:
        existing = self.messages.get(chat_id, [])
        return max((m.message_id for m in existing), default=0) + 1

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        visible, parse_mode, markup = self._visible(params)
        thread = params.get("message_thread_id")
        if thread is not None and not chat.get("is_forum") and chat["type"] != "private":
            raise ApiError(400, "Bad Request: message thread not found")
        reply = (params.get("reply_parameters") or {}).get("message_id")
        message = StoredMessage(
            chat_id=chat["id"],
            message_id=self._next_message_id(chat["id"]),
            text=visible,
            from_bot=True,
            sender=self.bot_user,
            parse_mode=parse_mode,
            markup=markup,
            thread_id=thread,
            reply_to=reply,
            versions=[visible],
            changed_at=[time.monotonic()],
        )
        self.messages.setdefault(chat["id"], []).append(message)
        return message.as_json(chat)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        found = [m for m in self.messages.get(chat["id"], []) if m.message_id == params.get("message_id")]
        if not found:
            raise ApiError(400, "Bad Request: message to edit not found")
        message = found[0]
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        visible, parse_mode, markup = self._visible(params)
        if visible == message.text and markup == message.markup:
            raise ApiError(400, NOT_MODIFIED)
        message.text, message.parse_mode, message.markup = visible, parse_mode, markup
        message.versions.append(visible)
        message.changed_at.append(time.monotonic())
        return message.as_json(chat)

    def _send_message_draft(self, params: dict[str, Any]) -> bool:
        """https://core.telegram.org/bots/api#sendmessagedraft (and PTB 22.8's ``Bot.send_message_draft``):
        private chats only, a non-zero ``draft_id``, 0-4096 characters after entity parsing; answers
        ``True``. The draft is a preview: it never becomes a message (the bot sends one)."""
        chat = self._chat(params.get("chat_id"))
        if chat["type"] != "private":
            raise ApiError(400, "Bad Request: drafts can be sent only to private chats")
        if not params.get("draft_id"):
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        if utf16_len(str(params.get("text") or "")) > MAX_TEXT:
            raise ApiError(400, "Bad Request: text is too long")
        self.drafts.append({**params, "at": time.monotonic()})
        return True

    # -- inline keyboards and button clicks (feedback buttons) -----------------------------------
    # Follows https://core.telegram.org/bots/api#editmessagereplymarkup (no reply_markup removes the
    # keyboard; the same markup again is "message is not modified"), #answercallbackquery (text shown to
    # the clicking user only) and #callbackquery (the update a click sends: id, from, message, chat_instance,
    # data; callback_data is 1-64 bytes, #inlinekeyboardbutton).

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        found = [m for m in self.messages.get(chat["id"], []) if m.message_id == params.get("message_id")]
        if not found:
            raise ApiError(400, "Bad Request: message to edit not found")
        message = found[0]
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        markup = params.get("reply_markup") or None
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        if markup == message.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        message.reply_markup = markup
        return message.as_json(chat)

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        self.callback_answers.append(dict(params))
        return True

    def click(self, message: StoredMessage, data: str, *, user_id: int, queue: bool = True) -> dict[str, Any]:
        """A user's click on an inline button of ``message``: the ``callback_query`` update Telegram sends."""
        chat = self._chat(message.chat_id)
        query = {
            "id": f"cq{len(self.calls)}x{user_id}",
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "message": message.as_json(chat),
            "chat_instance": f"ci{chat['id']}",
            "data": data,
        }
        update = {"callback_query": query}
        return self.add_update(update) if queue else update

    @staticmethod
    def button_data(message: StoredMessage) -> list[str]:
        """The callback_data of the buttons under a message, in order."""
        rows = (message.reply_markup or {}).get("inline_keyboard", [])
        return [button["callback_data"] for row in rows for button in row if "callback_data" in button]

    def drafts_in(self, chat_id: int) -> list[dict[str, Any]]:
        """The draft updates a chat was shown, in order (``draft_id``, ``text``, ``at``)."""
        return [d for d in self.drafts if d.get("chat_id") == chat_id]

    # -- what tests drive and read ---------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        times: int = 1,
        retry_after: float | None = None,
        status: int | None = None,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error: 429 when ``retry_after`` is given."""
        if retry_after is not None:
            status = status or 429
            description = description or f"Too Many Requests: retry after {retry_after:g}"
        self.faults.append(
            Fault(
                method,
                status or 400,
                description or "Bad Request: scripted error",
                retry_after,
                chat_id,
                times,
            )
        )

    def add_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update for getUpdates; it gets the next ``update_id``."""
        update = {"update_id": self._next_update, **update}
        self._next_update += 1
        self._updates.append(update)
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = asyncio.Event()
        return update

    def numbered(self, update: dict[str, Any]) -> dict[str, Any]:
        """A raw update with the next ``update_id``, not queued for getUpdates (to post to a webhook)."""
        update = {"update_id": self._next_update, **update}
        self._next_update += 1
        return update

    def private_chat(self, user_id: int, first_name: str = "User") -> dict[str, Any]:
        chat = {"id": user_id, "type": "private", "first_name": first_name}
        self.chats[user_id] = chat
        return chat

    def group_chat(self, chat_id: int, *, forum: bool = False, title: str = "Group") -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": title}
        if forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        return chat

    def user_message(
        self,
        chat: dict[str, Any],
        text: str | None,
        *,
        user_id: int | None = None,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        extra: dict[str, Any] | None = None,
        queue: bool = True,
    ) -> dict[str, Any]:
        """A user's message as Telegram delivers it (entities included); queued as an update by default."""
        user_id = user_id if user_id is not None else (chat["id"] if chat["type"] == "private" else 1001)
        sender = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        message_id = self._next_message_id(chat["id"])
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
        }
        if text is not None:
            message["text"] = text
            entities = self.entities(text)
            if entities:
                message["entities"] = entities
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = reply_to.as_json(chat)
        elif thread_id is not None:  # a topic's messages "reply" to the message that created the topic
            message["reply_to_message"] = {
                "message_id": thread_id,
                "date": int(time.time()),
                "chat": chat,
                "from": sender,
                "message_thread_id": thread_id,
                "forum_topic_created": {"name": f"Topic {thread_id}", "icon_color": 7322096},
            }
        message.update(extra or {})
        self.messages.setdefault(chat["id"], []).append(
            StoredMessage(chat["id"], message_id, text or "", False, sender, thread_id=thread_id)
        )
        if queue:
            self.add_update({"message": message})
        return message

    @staticmethod
    def entities(text: str) -> list[dict[str, Any]]:
        """The entities a Telegram client adds: a leading ``/command`` and ``@mentions`` (UTF-16 offsets)."""
        found: list[dict[str, Any]] = []
        command = _COMMAND.match(text)
        if command:
            found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))})
        for match in _MENTION.finditer(text):
            found.append(
                {
                    "type": "mention",
                    "offset": utf16_offset(text, match.start()),
                    "length": utf16_len(match.group(0)),
                }
            )
        return found

    def bot_messages(self, chat_id: int, thread_id: int | str | None = "any") -> list[StoredMessage]:
        """The bot's messages in a chat (and topic, if given), oldest first."""
        return [
            m
            for m in self.messages.get(chat_id, [])
            if m.from_bot and (thread_id == "any" or m.thread_id == thread_id)
        ]

    def texts(self, chat_id: int, thread_id: int | str | None = "any") -> list[str]:
        return [m.text for m in self.bot_messages(chat_id, thread_id)]

    def calls_to(self, method: str, chat_id: int | None = None) -> list[ApiCall]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def rate_limited(self, chat_id: int | None = None) -> list[ApiCall]:
        """Calls answered 429 (pace enforcement or a scripted fault), in one chat or in all."""
        return [
            c
            for c in self.calls
            if c.status == 429 and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    async def wait_for(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``condition()`` holds (checked every 10 ms); fail after ``within`` seconds."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.01)

    @staticmethod
    async def post_webhook(url: str, update: dict[str, Any], secret: str | None) -> int:
        """Deliver an update to a webhook the way Telegram does; the HTTP status it answered."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=update, headers=headers) as response,
        ):
            await response.read()
            return response.status
