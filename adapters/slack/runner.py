"""The Slack runner: a bolt ``AsyncApp`` in HTTP mode (aiohttp server) or Socket Mode, and its handlers.

Handlers never wait for the model: they decide, deduplicate and hand the reply to a
:class:`adapters.base.ReplyDispatcher`, so bolt acks every event at once (Slack redelivers after 3 s).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.base import ReplyDispatcher
from adapters.slack.assistant import AssistantThreads
from adapters.slack.feedback import slack_feedback
from adapters.slack.files import SlackFiles
from adapters.slack.native import NativeFeatures
from adapters.slack.sessions import (
    Action,
    Place,
    Recent,
    allowed,
    decide,
    dedup_keys,
    has_files,
    place_for,
    prompt_text,
    team_of,
)
from adapters.slack.settings import SlackSettings
from adapters.slack.signing import MAX_BODY, refusal
from adapters.slack.target import SlackReplyTarget, WorkspaceGate
from adapters.work_queue import QueuedReplies, QueueUnavailable, WorkQueue, job_payload
from core.config import id_list
from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.incoming import IncomingMessage
from core.pacing import Gate
from core.shared_state import SharedUnavailable, shared_gate
from core.streaming import PlatformLimits

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_CHARS = 4_000  # Slack truncates at 40,000; it recommends staying under 4,000 for readability
# chat.update is Tier 3 (about 50 a minute per workspace): every reply in a workspace shares one gate.
UPDATE_RATE, UPDATE_PER = 45, 60.0
REFUSAL = "Sorry, I'm not available to you here."
# How long every worker remembers an event it handled. Slack retries a delivery it got no 2xx for within
# 3 s up to three times: at once, after 1 minute and after 5 minutes ("Retries" in the Events API docs,
# https://docs.slack.dev/apis/events-api/#retries); an hour covers that with room to spare.
SEEN_TTL = 3600.0
# the status line ("is thinking…") goes by itself after two minutes without a reply: set it again sooner
STATUS_INTERVAL = 60.0


def slack_limits(settings: SlackSettings) -> PlatformLimits:
    """Slack's limits; ``SLACK_EDIT_INTERVAL`` tunes the edit pace."""
    return PlatformLimits(
        max_chars=MAX_CHARS,
        min_edit_interval=settings.slack_edit_interval,
        typing_interval=STATUS_INTERVAL if settings.slack_status else None,
    )


class SlackRunner:
    """One Slack workspace connection. ``start`` returns once events can arrive."""

    name = "slack"

    def __init__(
        self, settings: SlackSettings, engine: ConversationEngine, queue: WorkQueue | None = None
    ) -> None:
        if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
            raise ConfigError("SLACK_BOT_TOKEN is not set: copy the app's Bot User OAuth Token (xoxb-...).")
        self.socket_mode = settings.slack_app_token is not None and bool(
            settings.slack_app_token.get_secret_value()
        )
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        if not self.socket_mode and not secret:
            raise ConfigError(
                "Slack needs SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode); neither is set."
            )
        self.settings = settings
        self.engine = engine
        self.limits = slack_limits(settings)
        self.dispatcher = ReplyDispatcher(engine, engine.clock)
        self.gates: dict[str, WorkspaceGate] = {}  # one chat.update budget per workspace
        self.allowed_channels = id_list(settings.slack_allowed_channels)
        self.allowed_users = id_list(settings.slack_allowed_users)
        self.followups = settings.slack_thread_followups
        self.seen = Recent(20_000)  # event ids and (channel, ts) pairs already handled
        self.threads = Recent(10_000)  # threads the bot has answered in, for follow-ups
        self.native = NativeFeatures(status=settings.slack_status, streams=settings.slack_native_streams)
        self.client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=_with_slash(settings.slack_api_url)
        )
        self._signing_secret = secret
        # with a work queue (CHATBOT_QUEUE_URL) the event becomes a job before Slack gets its ack, so bolt
        # runs the listener before answering (process_before_response) instead of after
        self.queue = queue
        self.files = SlackFiles(
            self.client, settings.slack_bot_token.get_secret_value(), settings.slack_api_url
        )
        self.app = AsyncApp(
            client=self.client,
            signing_secret=secret,
            name="chatbot-slack",  # not "chatbot": bolt sets the level of the logger named after the app
            process_before_response=queue is not None,
        )
        self.app.event("app_mention")(self.on_event)
        self.app.event("message")(self.on_event)
        # 👍 / 👎 under final replies; clicks arrive as block_actions (HTTP or Socket Mode)
        self.feedback = slack_feedback(
            engine, self.dispatcher, self.app, self.client, enabled=settings.slack_feedback_buttons
        )
        self.assistant = AssistantThreads(self.client, engine.bot, self.dispatcher)
        self.app.event("assistant_thread_started")(self.on_assistant_thread_started)
        self.port: int | None = None
        self._web: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None

    # ----- lifecycle

    async def start(self) -> None:
        identity = await _checked("SLACK_BOT_TOKEN", self.client.auth_test())
        log.info("slack: signed in as %s in %s", identity.get("user"), identity.get("team"))
        # From here on one connection pool for every Web API call (slack_sdk opens a session per call
        # otherwise: a TLS handshake on every post and update); bolt's per-request clients share it too.
        self.client.session = aiohttp.ClientSession()
        try:
            if self.queue is not None:
                await self.queue.open()
                self.queue.on_job(
                    QueuedReplies(
                        self.dispatcher,
                        self.queue,
                        self.name,
                        self.restore_target,
                        rebuild=self.files.attachment,
                    )
                )
                self.queue.start_worker()
            await self._listen()
        except BaseException:
            if self.queue is not None:
                await self.queue.close()
            await self.client.session.close()
            raise
        if self.queue is not None:
            return  # a dead worker's replies are taken over by the queue, not by the next start
        # replies a crash left half-written in this workspace: finish them (in the background)
        self.dispatcher.finish_interrupted(self.name, self.restore_target)

    async def _listen(self) -> None:
        """Socket Mode when an app token is set, else the HTTP events endpoint."""
        if self.socket_mode:
            assert self.settings.slack_app_token is not None
            app_token = self.settings.slack_app_token.get_secret_value()
            opened = await _checked("SLACK_APP_TOKEN", self.client.apps_connections_open(app_token=app_token))
            self._socket = AsyncSocketModeHandler(self.app, app_token)
            # Use the URL just opened: a bad app token failed above instead of in the SDK's endless retries.
            self._socket.client.wss_uri = str(opened["url"])
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack: connected in Socket Mode")
            return
        web_app = web.Application(client_max_size=MAX_BODY)
        web_app.router.add_post(EVENTS_PATH, self.handle_http)
        self._web = web.AppRunner(web_app, access_log=None)
        await self._web.setup()
        sock = _listening_socket(self.settings.slack_port)
        await web.SockSite(self._web, sock).start()
        self.port = port = int(sock.getsockname()[1])
        log.info("slack: listening for events on port %d at %s", port, EVENTS_PATH)

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        if self.queue is not None:
            await self.queue.close()  # the jobs in progress finish first
        await self.dispatcher.drain()
        if self.client.session is not None and not self.client.session.closed:
            await self.client.session.close()

    async def handle_http(self, request: web.Request) -> web.Response:
        """Size, signature and body checked first (:mod:`adapters.slack.signing`), then bolt's aiohttp
        adapter: url_verification, ack, our listeners. A refused request's body is never logged."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            return self._refuse(request, 413, "request body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # no Content-Length, but more than client_max_size arrived
            return self._refuse(request, 413, "request body too large")
        refused = refusal(self._signing_secret, body, request.headers, time.time())
        if refused is not None:
            return self._refuse(request, *refused)
        response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    @staticmethod
    def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
        log.info("slack: refused a request from %s: %s (HTTP %d)", request.remote, reason, status)
        return web.Response(status=status, text=reason)

    # ----- events

    async def on_event(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        """Decide what an ``app_mention`` or ``message`` event needs; never wait for the model here."""
        try:
            await self._handle(body, event, context.bot_user_id)
        except QueueUnavailable as exc:  # no ack: Slack delivers the event again
            log.error("slack: event not accepted, Slack will resend it: %s", exc)
            raise
        except Exception:
            log.exception("slack: could not handle a %s event", event.get("type"))

    async def _handle(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> None:
        delivery, message_key = dedup_keys(body, event)
        # queued, the queue's database deduplicates (across workers, and only once the job is committed)
        remember = self.queue is None
        if remember and delivery is not None and not await self.first_time(delivery):
            log.debug("slack: %s delivered again; ignored", delivery)
            return
        action = decide(str(event.get("type")), event, bot_user_id)
        if action is Action.IGNORE:
            return
        place = place_for(team_of(body, event), event)
        followup = action is Action.FOLLOWUP
        if followup:
            if not self.followups or not await self._answered_in(place):
                return
            action = Action.ANSWER
        if remember and not await self.first_time(message_key):  # one mention: app_mention and message
            return
        target = self._target(place, event.get("user"))
        if not allowed(event, self.allowed_channels, self.allowed_users):
            if not followup:  # someone chatting in a thread the bot is in was not asking the bot
                log.info("slack: %s is not on the allowlist here; refused", event.get("user"))
                self._say(target, REFUSAL)
            return
        self.threads.add(place.thread_key)
        attachments = await self.files.attachments(event) if has_files(event) else ()
        text = prompt_text(event, bot_user_id, self.engine.commands.names())
        self.assistant.first_question(place, text)
        message = IncomingMessage(
            session_id=self.engine.session_key(place.session_id),
            text=text,
            user_id=f"slack:{event.get('user')}",
            platform="slack",
            extras={"team": place.team, "channel": place.channel, "ts": event.get("ts")},
            attachments=attachments,
        )
        if self.queue is None:
            self.dispatcher.submit(message, target)
            return
        # the key is the message (team, channel, ts), not the envelope's event_id: it also covers the
        # app_mention and message events of one mention, which may reach two different workers
        key = f"slack:{place.team}:{message_key}"
        message = dataclasses.replace(message, event_id=key)
        if not await self.queue.defer(key, message.session_id, job_payload(message, target.address)):
            log.info("slack: %s delivered again; already queued", key)

    async def first_time(self, key: str) -> bool:
        """Whether no worker has handled ``key`` (an event id, a message) yet: asked of the shared state when
        there is one (a redelivery may reach another worker), else, or while it is unreachable, of this
        process's memory."""
        here = self.seen.first_time(key)
        if self.engine.shared is None:
            return here
        try:
            return await self.engine.shared.first_time(f"slack:seen:{key}", SEEN_TTL)
        except SharedUnavailable:
            return here

    async def _answered_in(self, place: Place) -> bool:
        """Whether the bot already talks in this thread (remembered, or on record from before a restart)."""
        if place.thread_key in self.threads:
            return True
        if await self.engine.store.count_messages(self.engine.session_key(place.session_id)) > 0:
            self.threads.add(place.thread_key)
            return True
        return False

    async def on_assistant_thread_started(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """A user opened the app's assistant panel: greet, offer the bot's prompts (in the background)."""
        try:
            delivery, _ = dedup_keys(body, event)
            if delivery is not None and not self.seen.first_time(delivery):
                return
            thread = event.get("assistant_thread") or {}
            user = str(thread.get("user_id") or "")
            place = place_for(
                team_of(body, event),
                {
                    "channel": thread.get("channel_id"),
                    "thread_ts": thread.get("thread_ts"),
                    "channel_type": "im",
                },
            )
            if not place.thread_ts or not allowed(
                {"user": user, "channel_type": "im"}, frozenset(), self.allowed_users
            ):
                return
            self.assistant.started(place, self._target(place, user))
        except Exception:
            log.exception("slack: could not handle an assistant_thread_started event")

    def _target(self, place: Place, user: object = None) -> SlackReplyTarget:
        return SlackReplyTarget(
            client=self.client,
            channel=place.channel,
            thread_ts=place.thread_ts,
            limits=self.limits,
            gate=self.workspace_gate(place.team),
            team=place.team,
            native=self.native,
            recipient=str(user) if user else None,
        )

    def restore_target(self, address: Any) -> SlackReplyTarget:
        """The target a reply in flight had, from its stored address (to finish it after a restart)."""
        team = str(address.get("team") or "")
        return SlackReplyTarget(
            client=self.client,
            channel=str(address["channel"]),
            thread_ts=address.get("thread_ts"),
            limits=self.limits,
            gate=self.workspace_gate(team),
            team=team,
        )

    def gate(self, team: str) -> WorkspaceGate:
        """The pace every reply in workspace ``team`` shares."""
        gate = self.gates.get(team)
        if gate is None:
            max_delay = max(1.0, self.limits.min_edit_interval)
            gate = self.gates[team] = WorkspaceGate(
                UPDATE_RATE, UPDATE_PER, self.engine.clock, max_delay=max_delay
            )
        return gate

    def workspace_gate(self, team: str) -> Gate:
        """The workspace's pace as every worker shares it (this process's gate when there is one worker)."""
        local = self.gate(team)
        return shared_gate(self.engine.shared, f"slack:workspace:{team}", local, max_delay=local.max_delay)

    def _say(self, target: SlackReplyTarget, text: str) -> None:
        """Send a fixed notice in the background (the handler must not wait for Slack either); a fixed
        text needs no "is thinking…" line and no stream."""
        self.dispatcher.notify(dataclasses.replace(target, native=None), text)


async def _checked(key: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    """A start-up call whose failure is a configuration problem, named by the setting to check."""
    try:
        return await call
    except SlackApiError as exc:
        error = exc.response.get("error", f"HTTP {exc.response.status_code}")
        raise ConfigError(f"Slack refused {key} ({error}): check the token and the app's scopes.") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach Slack at SLACK_API_URL: {type(exc).__name__}: {exc}") from None


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _listening_socket(port: int) -> socket.socket:
    """A socket bound to every interface on ``port`` (0: any free port, as tests use)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("0.0.0.0", port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"SLACK_PORT {port} cannot be used: {exc.strerror or exc}") from exc
    return sock
