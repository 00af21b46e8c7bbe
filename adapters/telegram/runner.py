"""The Telegram runner: a python-telegram-bot Application, fed by long polling or a webhook.

PTB handles updates one at a time; the handler here does no I/O of its own. It maps the update (see
:mod:`adapters.telegram.sessions`), checks the allowlist and hands the reply to a
:class:`adapters.base.ReplyDispatcher`, which streams it as its own task. So a long reply or a flood wait in
one chat never stalls another, and replies within one session still come out in arrival order.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from telegram import Bot, BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from adapters.base import ReplyDispatcher
from adapters.telegram.albums import Albums
from adapters.telegram.attachments import attachment, attachment_from
from adapters.telegram.drafts import DRAFT_REFRESH, DraftSupport
from adapters.telegram.feedback import telegram_feedback
from adapters.telegram.queued import QueuedWebhook
from adapters.telegram.sessions import BotIdentity, Route, route
from adapters.telegram.settings import TelegramSettings
from adapters.telegram.target import TelegramTarget
from adapters.work_queue import QueuedReplies, WorkQueue, queue_from
from core.config import id_list
from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.incoming import IncomingMessage
from core.pacing import AllGates, BurstGate, Gate, KeyedGates, RateGate, RateGates
from core.splitting import utf16_len
from core.streaming import PlatformLimits

log = logging.getLogger(__name__)

MAX_CHARS = 4096
NOT_ALLOWED = (
    "Sorry, this bot is private. If you should have access, ask its operator to add your user id "
    "({user_id}) to TELEGRAM_ALLOWED_IDS."
)
AnyApplication: TypeAlias = "Application[Any, Any, Any, Any, Any, Any]"
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True, slots=True)
class TelegramTuning:
    """Pacing and timeouts. The defaults are Telegram's safe limits; tests use tiny values."""

    private_edit_interval: float = 1.0  # at most one edit a second in a private chat
    chat_burst: int = 3  # any chat: this many calls at once, then one per private_edit_interval
    group_edit_interval: float = 3.0  # and one per three seconds in a group
    typing_interval: float = 4.0  # "typing..." lasts about 5 s
    group_rate: int = 20  # messages and edits per group ...
    group_per: float = 60.0  # ... per minute, shared by every reply in that group
    # messages and edits of the bot in all chats per second, paced only when several workers share state
    # (CHATBOT_REDIS_URL): Telegram's limit is 30 a second; workers reserve slots in Redis and their calls
    # reach Telegram with some jitter, so slots reserved on time can land bunched: at 25 the fault test
    # (tests/test_work_queue_faults.py) still met 429s in about one run in five, at 30 in every run
    global_rate: int = 20
    global_per: float = 1.0
    poll_timeout: float = 30.0  # long-polling hold time
    drain_grace: float = 30.0  # on stop, how long replies in flight may take to finish
    album_wait: float = 1.0  # an album is complete once no part has come for this long
    draft_refresh: float = DRAFT_REFRESH  # an unchanged draft is shown again (drafts expire after ~30 s)


DEFAULT_TUNING = TelegramTuning()


class TelegramRunner:
    """Connects the engine to Telegram: ``start`` returns once updates flow, ``stop`` drains replies."""

    name = "telegram"

    def __init__(
        self,
        settings: TelegramSettings,
        engine: ConversationEngine,
        tuning: TelegramTuning | None = None,
        queue: WorkQueue | None = None,
    ) -> None:
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
        if not token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set: get one from @BotFather (see docs/telegram.md)")
        self._token = token
        self._root = settings.telegram_base_url.rstrip("/")
        self._webhook_url = settings.telegram_webhook_url or None
        self._webhook_listen = settings.telegram_webhook_listen
        self._webhook_port = settings.telegram_webhook_port
        secret = (
            settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else ""
        )
        if secret and not _SECRET_TOKEN.match(secret):
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET may only contain A-Z, a-z, 0-9, '_' and '-' (1-256 characters)"
            )
        # Without a configured secret, a random one still makes Telegram prove each webhook request.
        self._webhook_secret = secret or secrets.token_urlsafe(32)
        self._allowed = id_list(settings.telegram_allowed_ids)
        self._per_user = settings.telegram_group_per_user
        self.drafts = DraftSupport(enabled=settings.telegram_drafts)  # private chats stream in drafts
        self.tuning = tuning or DEFAULT_TUNING
        self.engine = engine
        self.clock = engine.clock  # injected: replies, pacing and flood waits all wait on it
        self.dispatcher = ReplyDispatcher(engine, self.clock)
        self.albums: Albums[TelegramTarget] = Albums(
            self.clock, self.dispatcher.submit, wait=self.tuning.album_wait
        )
        self._gates = RateGates(self.tuning.group_rate, self.tuning.group_per, self.clock)
        # a short burst, then about one message or edit a second in any chat, whatever number of replies
        # stream into it; previews leave one call of the burst for a final edit, which then goes at once
        self._chat_gates = KeyedGates(
            lambda: BurstGate(self.tuning.chat_burst, self.tuning.private_edit_interval, self.clock)
        )
        # the bot's pace over all chats: with several workers (shared state) every one of them counts
        self._global_gate = RateGate(self.tuning.global_rate, self.tuning.global_per, self.clock)
        self.app: AnyApplication | None = None
        self.me: BotIdentity | None = None
        # with a work queue (CHATBOT_QUEUE_URL): the webhook defers jobs, any worker answers them
        self.queue = queue
        self.webhook: QueuedWebhook | None = None
        if queue is not None and not self._webhook_url:
            raise ConfigError(
                "CHATBOT_QUEUE_URL needs TELEGRAM_WEBHOOK_URL: workers behind a load balancer receive "
                "updates by webhook (long polling allows one process only)"
            )
        # 👍 / 👎 under final replies; clicks arrive as callback_query updates
        self.feedback = telegram_feedback(engine, self.dispatcher, enabled=settings.telegram_feedback_buttons)
        self._update_types = [Update.MESSAGE] + ([Update.CALLBACK_QUERY] if self.feedback else [])

    @property
    def in_flight(self) -> int:
        """Replies and notices still being delivered."""
        return self.dispatcher.pending

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(f"{self._root}/bot")
            .base_file_url(f"{self._root}/file/bot")
            .build()
        )
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        await self._initialize(app)
        try:
            self.me = BotIdentity(app.bot.id, app.bot.username)
            await self._register_commands(app)
            assert app.updater is not None
            if self.queue is not None:
                await self._start_queued(app)
            elif self._webhook_url:
                await app.updater.start_webhook(
                    listen=self._webhook_listen,
                    port=self._webhook_port,
                    url_path=urlsplit(self._webhook_url).path.lstrip("/"),
                    webhook_url=self._webhook_url,
                    secret_token=self._webhook_secret,
                    allowed_updates=self._update_types,
                )
                log.info("telegram: @%s receives updates by webhook", self.me.username)
            else:
                await app.updater.start_polling(
                    timeout=timedelta(seconds=self.tuning.poll_timeout),
                    allowed_updates=self._update_types,
                    error_callback=self._on_poll_error,
                )
                log.info("telegram: @%s receives updates by long polling", self.me.username)
            if self.queue is None:
                await app.start()
        except BaseException as exc:
            await self._stop_queued()
            await self._close(app)
            if isinstance(exc, TelegramError):
                raise ConfigError(
                    f"Telegram refused to deliver updates ({self._redact(exc.message)}); "
                    "check TELEGRAM_WEBHOOK_URL, or that no other instance uses this token"
                ) from None
            if isinstance(exc, OSError) and self._webhook_url:
                raise ConfigError(
                    f"the webhook server cannot listen on {self._webhook_listen}:{self._webhook_port} ({exc}); "
                    "check TELEGRAM_WEBHOOK_LISTEN and TELEGRAM_WEBHOOK_PORT"
                ) from None
            raise
        self.app = app
        if self.queue is not None:
            return  # a dead worker's replies are taken over by the queue, not by the next start
        # replies a crash left half-written in this bot's chats: finish them (in the background)
        self.dispatcher.finish_interrupted(self.name, lambda address: self.restore_target(address, app.bot))

    async def _start_queued(self, app: AnyApplication) -> None:
        """Open the queue, run its jobs, and serve the webhook that defers them (see ``queued.py``)."""
        assert self.queue is not None and self._webhook_url is not None
        await self.queue.open()
        bot = app.bot
        self.queue.on_job(
            QueuedReplies(
                self.dispatcher,
                self.queue,
                self.name,
                lambda a: self.restore_target(a, bot),
                rebuild=lambda ref: attachment_from(ref, bot),
            )
        )
        self.queue.start_worker()
        self.webhook = QueuedWebhook(
            self, bot, self.queue, urlsplit(self._webhook_url).path, self._webhook_secret
        )
        await self.webhook.start(self._webhook_listen, self._webhook_port)
        await bot.set_webhook(
            self._webhook_url, secret_token=self._webhook_secret, allowed_updates=[Update.MESSAGE]
        )
        log.info("telegram: @%s receives updates by webhook, replies through the work queue", bot.username)

    async def _stop_queued(self) -> None:
        """No new updates, then the jobs in progress finish (a killed worker's are taken over)."""
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        if self.queue is not None:
            await self.queue.close()

    async def _initialize(self, app: AnyApplication) -> None:
        """Connect and check the token (getMe), as a :class:`ConfigError` that says what to fix."""
        try:
            await app.initialize()
        except BaseException as exc:
            await app.bot.shutdown()  # a failed initialize leaves the HTTP clients open
            if isinstance(exc, InvalidToken):
                raise ConfigError(
                    f"TELEGRAM_BOT_TOKEN was rejected by the Bot API at {self._root}: "
                    "copy the token from @BotFather again"
                ) from None
            if isinstance(exc, TelegramError):
                raise ConfigError(
                    f"could not reach the Telegram Bot API at {self._root} ({self._redact(exc.message)}); "
                    "check TELEGRAM_BASE_URL and the network"
                ) from None
            raise

    async def stop(self) -> None:
        app, self.app = self.app, None
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            await app.updater.stop()  # no new updates
        if app.running:
            await app.stop()
        await self._stop_queued()
        await self.albums.close()  # albums still being collected are answered too
        await self.dispatcher.drain(self.tuning.drain_grace)  # replies in flight still need the bot
        await app.shutdown()

    async def _close(self, app: AnyApplication) -> None:
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            await app.shutdown()
        except Exception:
            log.debug("telegram: cleanup after a failed start failed", exc_info=True)

    async def _register_commands(self, app: AnyApplication) -> None:
        try:
            await app.bot.set_my_commands(self.menu())
        except TelegramError as exc:  # a missing command menu is no reason not to run
            log.warning("telegram: could not register the command menu: %s", self._redact(exc.message))

    def commands(self) -> frozenset[str]:
        """The command names (without ``/``) the engine answers, from its registry."""
        return self.engine.commands.names()

    def menu(self) -> list[BotCommand]:
        """The command menu (``setMyCommands``): every command in the engine's registry, in its order."""
        return [BotCommand(command.name, command.description) for command in self.engine.commands]

    # -- updates ---------------------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            if self.feedback is not None and self.me is not None:
                self.feedback.on_click(update.callback_query, context.bot)
            return
        admitted = self.admit(update.to_dict(), context.bot)
        if admitted is None:
            return
        message, target, found = admitted
        if found.media_group_id is not None:  # one part of an album: answered once it is all there
            self.albums.add(f"{found.session_id}/{found.media_group_id}", message, target)
            return
        self.dispatcher.submit(message, target)

    def admit(self, data: dict[str, Any], bot: Bot) -> tuple[IncomingMessage, TelegramTarget, Route] | None:
        """The message to answer in an update's JSON, and where; ``None`` when there is nothing to answer
        (not for us), or when a fixed notice answers it (not allowed), sent here."""
        if self.me is None:
            return None
        found = route(data, self.me, per_user=self._per_user, commands=self.commands())
        if found is None:
            return None
        target = self.target_for(found, bot)
        if not self.allowed(found):
            log.info(
                "telegram: refused user %s in chat %s (not in the allowlist)", found.user_id, found.chat_id
            )
            self._notify(target, NOT_ALLOWED.format(user_id=found.user_id))
            return None
        message = IncomingMessage(
            session_id=self.engine.session_key(found.session_id),
            text=found.text,
            user_id=f"telegram:{found.user_id}",
            platform="telegram",
            extras={"chat_id": found.chat_id, "message_id": found.message_id, "thread_id": found.thread_id},
            attachments=tuple(attachment(file, bot) for file in found.files),
        )
        return message, target, found

    def allowed(self, found: Route) -> bool:
        """Everyone when the allowlist is empty; else listed users, and anyone in a listed chat."""
        return not self._allowed or str(found.user_id) in self._allowed or str(found.chat_id) in self._allowed

    def limits_for(self, found: Route) -> PlatformLimits:
        return self._limits(in_group=found.in_group)

    def _limits(self, *, in_group: bool) -> PlatformLimits:
        interval = self.tuning.group_edit_interval if in_group else self.tuning.private_edit_interval
        drafts = not in_group and self.drafts.enabled
        return PlatformLimits(
            max_chars=MAX_CHARS,
            min_edit_interval=interval,
            typing_interval=self.tuning.typing_interval,
            measure=utf16_len,
            refresh_after=self.tuning.draft_refresh if drafts else None,
        )

    def target_for(self, found: Route, bot: Bot) -> TelegramTarget:
        return TelegramTarget(
            bot,
            found.chat_id,
            limits=self.limits_for(found),
            thread_id=found.thread_id,
            reply_to=found.reply_to,
            gate=self.gate_for(found),
            in_group=found.in_group,
            drafts=self.drafts,
        )

    def restore_target(self, address: Any, bot: Bot) -> TelegramTarget:
        """The target a reply in flight had, from its stored address (to finish it after a restart)."""
        chat_id, in_group = int(address["chat_id"]), bool(address.get("in_group"))
        return TelegramTarget(
            bot,
            chat_id,
            limits=self._limits(in_group=in_group),
            thread_id=address.get("thread_id"),
            reply_to=address.get("reply_to"),  # set in a queued job's address (adapters/telegram/queued.py)
            gate=self._gate(chat_id, in_group=in_group),
            in_group=in_group,
            drafts=self.drafts,
        )

    def gate_for(self, found: Route) -> Gate:
        return self._gate(found.chat_id, in_group=found.in_group)

    def _gate(self, chat_id: int, *, in_group: bool) -> Gate:
        """The chat's pace (and its group's). With several workers (shared state) every worker shares it,
        and the bot's global pace as well: N workers would otherwise send N times Telegram's 30 a second."""
        chat = self._chat_gates.get(str(chat_id))
        group = self._gates.get(str(chat_id))
        if self.engine.shared is None:
            return AllGates(chat, group) if in_group else chat
        if in_group:
            keys = [f"telegram:chat:{chat_id}", f"telegram:group:{chat_id}", "telegram:global"]
            return self.engine.shared.gate(keys, AllGates(chat, group, self._global_gate))
        keys = [f"telegram:chat:{chat_id}", "telegram:global"]
        return self.engine.shared.gate(keys, AllGates(chat, self._global_gate))

    def _notify(self, target: TelegramTarget, text: str) -> None:
        self.dispatcher.notify(target, text)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error("telegram: handling an update failed: %s", self._redact(repr(error)), exc_info=error)

    def _on_poll_error(self, exc: TelegramError) -> None:
        log.warning("telegram: polling failed (%s); retrying", self._redact(exc.message))

    def _redact(self, text: str) -> str:
        secret_part = self._token.split(":", 1)[-1]
        return text.replace(self._token, "[redacted]").replace(secret_part, "[redacted]")


def create_runner(
    settings: TelegramSettings, engine: ConversationEngine, tuning: TelegramTuning | None = None
) -> TelegramRunner:
    """The runner ``chatbot run --platform telegram`` starts (queued when ``CHATBOT_QUEUE_URL`` is set)."""
    return TelegramRunner(settings, engine, tuning, queue=queue_from(settings))
