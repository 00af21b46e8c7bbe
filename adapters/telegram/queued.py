"""Telegram over N workers: each worker's webhook makes an update durable work before answering 200.

With ``CHATBOT_QUEUE_URL`` set, the runner serves the webhook itself (aiohttp) instead of PTB's webhook
server, because PTB's answers 200 as soon as the update is in its in-memory queue: a worker dying then
would lose it. Here a request is answered only once its job is committed in PostgreSQL
(:meth:`adapters.work_queue.queue.WorkQueue.defer`):

- wrong or missing ``X-Telegram-Bot-Api-Secret-Token`` -> 403; a body that is not an update -> 400;
- an update with nothing to answer (not for us) -> 200; one answered by a fixed notice (allowlist, not
  text) -> the notice is sent from here, then 200;
- the job committed, or the update deferred before (Telegram re-posts an update it got no 200 for: the
  ``update_id`` is the delivery's key, so a redelivery never makes a second job) -> 200;
- the queue's database unreachable -> 503, and Telegram delivers the update again later.

Every worker also runs the queue's jobs (:class:`adapters.work_queue.delivery.QueuedReplies`), whichever
worker received the update; one chat's replies run one at a time, in arrival order, across all workers.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import socket
from typing import TYPE_CHECKING, Any

from aiohttp import web
from telegram import Bot

from adapters.work_queue.delivery import job_payload
from adapters.work_queue.queue import QueueUnavailable, WorkQueue

if TYPE_CHECKING:
    from adapters.telegram.runner import TelegramRunner

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # an update is a few kilobytes; Telegram's own limit on a webhook body is far below


class QueuedWebhook:
    """The webhook endpoint of one worker: updates in, jobs deferred, 200 out."""

    def __init__(self, runner: TelegramRunner, bot: Bot, queue: WorkQueue, path: str, secret: str) -> None:
        self.runner = runner
        self.bot = bot
        self.queue = queue
        self.path = "/" + path.lstrip("/")
        self._secret = secret
        self._web: web.AppRunner | None = None
        self.deferred = 0
        self.duplicates = 0

    async def start(self, listen: str, port: int) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self.path, self.handle)
        self._web = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._web.setup()
        sock = socket.create_server((listen, port), reuse_port=False)
        await web.SockSite(self._web, sock).start()

    async def stop(self) -> None:
        if self._web is not None:
            await self._web.cleanup()
            self._web = None

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            return web.Response(status=403, text="wrong secret token")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="the body is not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not a Telegram update")
        return await self.accept(data)

    async def accept(self, data: dict[str, Any]) -> web.Response:
        admitted = self.runner.admit(data, self.bot)
        if admitted is None:
            return web.Response(text="ok")
        message, target, found = admitted
        assert self.runner.me is not None
        event = f"telegram:{self.runner.me.id}:{data['update_id']}"  # update ids are per bot
        message = dataclasses.replace(message, event_id=event)
        address = {**target.address, "reply_to": found.reply_to}
        try:
            fresh = await self.queue.defer(event, message.session_id, job_payload(message, address))
        except QueueUnavailable as exc:
            log.error("telegram: update %s not accepted, Telegram will resend it: %s", data["update_id"], exc)
            return web.Response(status=503, text="try again")
        if fresh:
            self.deferred += 1
        else:
            self.duplicates += 1
            log.info("telegram: update %s delivered again; already queued", data["update_id"])
        return web.Response(text="ok")
