"""State every worker process of a bot shares, in Redis: the Redis side of :mod:`core.shared_state`.

    settings.py     CHATBOT_REDIS_URL, CHATBOT_REDIS_PREFIX
    redis_state.py  the connection, the fallback while Redis is lost, dedup keys, rate windows, totals
    redis_gate.py   the pace gate: one Lua script reserves the next slot for every worker

The wiring (``bots/app.py``) opens it and sets ``engine.shared``; the adapters build their gates and the
Slack dedup through it, the limits feature its rate windows and daily totals.
"""

from __future__ import annotations

from adapters.shared_state.settings import SharedStateSettings

__all__ = ["SharedStateSettings"]
