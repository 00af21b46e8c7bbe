"""The Redis side of the shared state (adapters/shared_state/), against a real Redis on loopback: two
``RedisState`` objects with their own connections play two worker processes."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.shared_state.redis_state import RedisState, connect
from core.clock import SystemClock
from core.errors import ConfigError
from core.pacing import BurstGate, RateGate
from core.shared_state import SharedUnavailable
from tests.support.services import OwnRedis, free_port

CLOCK = SystemClock()


@pytest.fixture
async def workers(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[RedisState, RedisState]]:
    """Two workers' connections to one Redis, under this test's key prefix."""
    first = await connect(redis_url, CLOCK, prefix=redis_prefix)
    second = await connect(redis_url, CLOCK, prefix=redis_prefix)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_preview_slot_taken_by_one_worker_is_not_free_for_the_other(
    workers: tuple[RedisState, RedisState],
) -> None:
    a, b = workers
    gate_a = a.gate("telegram:chat:1", BurstGate(3, 60.0, CLOCK, margin=0.0))
    gate_b = b.gate("telegram:chat:1", BurstGate(3, 60.0, CLOCK, margin=0.0))
    # a burst of three keeps one call for final edits: two previews in all, whichever worker asks
    assert await gate_a.try_take() == 0.0
    assert await gate_b.try_take() == 0.0
    wait = await gate_a.try_take()
    assert 0 < wait <= 60.0
    assert await gate_b.try_take() > 0
    # another chat has its own budget
    assert await b.gate("telegram:chat:2", BurstGate(3, 60.0, CLOCK, margin=0.0)).try_take() == 0.0


async def test_must_happen_calls_of_two_workers_go_in_arrival_order_at_the_shared_pace(
    workers: tuple[RedisState, RedisState],
) -> None:
    a, b = workers
    per = 0.2
    served: list[int] = []

    async def call(index: int) -> None:
        state = (a, b)[index % 2]
        await state.gate("discord:channel:9", RateGate(1, per, CLOCK, margin=0.0)).acquire()
        served.append(index)

    started = CLOCK.now()
    tasks = []
    for index in range(6):
        tasks.append(asyncio.create_task(call(index)))
        await asyncio.sleep(0.01)  # they reach Redis in this order
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2, 3, 4, 5]
    # one call per 0.2 s between them both: the sixth cannot go before five windows have passed
    assert CLOCK.now() - started >= 5 * per


async def test_a_sliding_window_counts_every_workers_events(workers: tuple[RedisState, RedisState]) -> None:
    a, b = workers
    assert await a.window_wait("user:1", 2, 60.0) == 0.0
    assert await b.window_wait("user:1", 2, 60.0) == 0.0
    wait = await a.window_wait("user:1", 2, 60.0)
    assert 59.0 < wait <= 60.0
    assert await b.window_wait("user:2", 2, 60.0) == 0.0


async def test_first_time_is_true_for_exactly_one_worker(workers: tuple[RedisState, RedisState]) -> None:
    a, b = workers
    results = await asyncio.gather(*(w.first_time("slack:seen:Ev1", 60.0) for w in (a, b, a, b)))
    assert sorted(results) == [False, False, False, True]


async def test_a_total_is_seeded_once_and_added_to_by_every_worker(
    workers: tuple[RedisState, RedisState],
) -> None:
    a, b = workers
    seeds = 0

    async def seed() -> int:
        nonlocal seeds
        seeds += 1
        return 100

    assert await a.add_to_total("day:u1", 5) is None  # nobody seeded it: left for the seed
    assert await a.total("day:u1", 60.0, seed) == 100
    await b.add_to_total("day:u1", 20)
    await a.add_to_total("day:u1", 7)
    assert await b.total("day:u1", 60.0, seed) == 127
    assert seeds == 1


async def test_every_key_expires(workers: tuple[RedisState, RedisState], redis_prefix: str) -> None:
    a, _b = workers
    await a.gate("slack:workspace:T1", RateGate(3, 5.0, CLOCK)).acquire()
    await a.gate("telegram:chat:5", BurstGate(3, 1.0, CLOCK)).acquire()
    await a.window_wait("user:9", 3, 60.0)
    await a.first_time("seen:x", 30.0)
    await a.total("day:u9", 90.0, _zero)
    keys = [key async for key in a.client.scan_iter(match=redis_prefix + "*")]
    assert len(keys) == 5
    for key in keys:
        assert await a.client.pttl(key) > 0, key


async def _zero() -> int:
    return 0


async def test_redis_down_at_start_is_a_config_error_that_hides_the_password() -> None:
    port = free_port()
    with pytest.raises(ConfigError) as caught:
        await connect(f"redis://:hunter2-secret@127.0.0.1:{port}/0", CLOCK)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "CHATBOT_REDIS_URL" in message
    assert "hunter2" not in message


async def test_a_lost_redis_falls_back_with_one_warning_and_is_used_again_when_back(
    own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    state = await connect(own_redis.url, CLOCK, prefix="t:")
    state.retry_after = 0.2
    local = BurstGate(3, 60.0, CLOCK, margin=0.0)
    gate = state.gate("telegram:chat:1", local)
    try:
        assert await state.first_time("seen:1", 60.0)
        own_redis.stop()
        caplog.set_level(logging.INFO, logger="adapters.shared_state")
        for _ in range(3):  # every call still answers: the in-process gate paces this worker
            with pytest.raises(SharedUnavailable):
                await state.first_time("seen:2", 60.0)
            await gate.acquire()
            await asyncio.sleep(0.25)  # past retry_after: each round tries Redis again
        assert local.delay() > 0, "the local gate counted the calls while Redis was gone"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
        own_redis.start()
        assert await state.first_time("seen:3", 60.0)
        assert any("is back" in r.getMessage() for r in caplog.records)
        # the restarted server has no scripts loaded: the gate loads its script again and is shared again
        assert await gate.try_take() == 0.0
        assert not state.lost and await state.client.exists("t:gate:telegram:chat:1:burst:0")
    finally:
        await state.close()


async def test_the_url_password_is_never_logged(
    own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = Redis.from_url(own_redis.url)
    await admin.config_set("requirepass", "s3cret-pass")
    await admin.aclose()
    state = await connect(f"redis://:s3cret-pass@127.0.0.1:{own_redis.port}/0", CLOCK)
    try:
        own_redis.stop()
        with pytest.raises(SharedUnavailable):
            await state.first_time("x", 1.0)
    finally:
        await state.close()
    assert caplog.records and not any("s3cret" in r.getMessage() for r in caplog.records)


async def test_a_hung_redis_counts_as_lost_after_the_command_timeout(own_redis: OwnRedis) -> None:
    state = await connect(own_redis.url, CLOCK, prefix="t:")
    local = RateGate(5, 5.0, CLOCK)
    gate = state.gate("discord:channel:1", local)
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        assert await gate.try_take() == 0.0  # answered by the local gate once the command timed out
        assert state.lost and local.delay() == 0.0 and len(local.shapes) == 1
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
        await state.close()
