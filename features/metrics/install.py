"""Prometheus metrics at ``http://<host>:CHATBOT_METRICS_PORT/metrics`` (off unless the port is set).

Counters of turns (by bot, platform and status), tokens and cost, and a histogram of the latency of turns
that called the model. Each engine has its own registry, so several engines (and tests) never share one.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from core.errors import ConfigError
from core.incoming import IncomingMessage
from core.store import TurnRecord
from features import FeatureContext
from features.limits.pricing import PriceTable

ORDER = 60
DEFAULT_HOST = "127.0.0.1"
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)

log = logging.getLogger(__name__)


class TurnMetrics:
    """Turn observer that keeps the counters and the latency histogram of one engine."""

    def __init__(self, registry: CollectorRegistry, prices: PriceTable) -> None:
        self.registry = registry
        self.prices = prices
        labels = ("bot", "platform")
        self.turns = Counter(
            "chatbot_turns",
            "Turns, by outcome (ok, error, blocked, ...)",
            (*labels, "status"),
            registry=registry,
        )
        self.tokens = Counter(
            "chatbot_tokens",
            "Tokens sent to and received from the model",
            (*labels, "kind"),
            registry=registry,
        )
        self.cost = Counter(
            "chatbot_cost_usd",
            "Cost of the turns' model calls in USD, from the price table",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "chatbot_turn_latency_seconds",
            "Time from a message to the end of its reply, for turns that called the model",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None:
        bot, platform = turn.bot or "unknown", turn.platform or "unknown"
        self.turns.labels(bot, platform, turn.status).inc()
        if turn.prompt_tokens:
            self.tokens.labels(bot, platform, "prompt").inc(turn.prompt_tokens)
        if turn.completion_tokens:
            self.tokens.labels(bot, platform, "completion").inc(turn.completion_tokens)
        if turn.model:
            self.latency.labels(bot, platform).observe(turn.latency_ms / 1000.0)
            cost = self.prices.cost(turn.model, turn.prompt_tokens, turn.completion_tokens)
            if cost:
                self.cost.labels(bot, platform).inc(cost)


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> web.AppRunner:
    """Serve ``registry`` at ``/metrics``; the returned runner's ``cleanup()`` stops it."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"CHATBOT_METRICS_PORT: cannot serve metrics on {host}:{port} ({exc.strerror or exc})"
        ) from None
    return runner


async def install(ctx: FeatureContext) -> None:
    port = ctx.settings.metrics_port
    if port is None:
        return
    registry = CollectorRegistry()
    ctx.engine.hooks.observers.append(TurnMetrics(registry, PriceTable.from_setting(ctx.settings.prices)))
    host = ctx.settings.metrics_host or DEFAULT_HOST
    runner = await serve_metrics(registry, host, port)
    ctx.closers.append(runner.cleanup)
    log.info("metrics at http://%s:%d/metrics", host, port)
