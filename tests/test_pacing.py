"""Shared rate gates: waiters served first come first served, and a bounded number of gates kept."""

from __future__ import annotations

import asyncio

from core.pacing import AllGates, RateGate, RateGates
from tests.support.clock import VirtualClock


async def _arrivals(gate: RateGate | AllGates, clock: VirtualClock, starts: list[float]) -> list[int]:
    """Waiters ``i`` arriving at ``starts[i]`` seconds; returns the order in which they got a slot."""
    served: list[int] = []

    async def waiter(index: int, at: float) -> None:
        await clock.sleep(at)
        await gate.acquire()
        served.append(index)

    await asyncio.gather(*(waiter(i, at) for i, at in enumerate(starts)))
    return served


async def test_rate_gate_serves_waiters_in_arrival_order() -> None:
    clock = VirtualClock()
    gate = RateGate(1, 1.0, clock, margin=0.0)
    await gate.acquire()  # the window is full until t+1
    # waiters 0..3 arrive while it is full; 4 arrives exactly when the first slot frees (before 0 wakes)
    served = await _arrivals(gate, clock, [0.1, 0.2, 0.3, 0.4, 1.0])
    assert served == [0, 1, 2, 3, 4]


async def test_all_gates_serve_waiters_in_arrival_order() -> None:
    clock = VirtualClock()
    chat, group = RateGate(1, 1.0, clock, margin=0.0), RateGate(2, 3.0, clock, margin=0.0)
    gates = AllGates(chat, group)
    await gates.acquire()
    served = await _arrivals(gates, clock, [0.1, 0.2, 0.3, 1.0, 2.0, 3.0])
    assert served == [0, 1, 2, 3, 4, 5]


async def test_rate_gates_stay_bounded_and_keep_a_gate_in_use() -> None:
    clock = VirtualClock()
    gates = RateGates(2, 60.0, clock, max_size=100)
    busy = gates.get("busy")
    await busy.acquire()
    await busy.acquire()  # its window is full for a minute
    for i in range(10_000):
        gates.get(f"chat{i}")
        assert len(gates) <= 100
    assert gates.get("busy") is busy and busy.delay() > 0, "a gate in use keeps its state"


async def test_rate_gates_stay_bounded_when_every_gate_is_busy() -> None:
    clock = VirtualClock()
    gates = RateGates(1, 60.0, clock, max_size=50)
    for i in range(10_000):
        await gates.get(f"chat{i}").acquire()
        assert len(gates) <= 50
    recent = gates.get("chat9999")
    assert recent.delay() > 0, "the most recently used gate keeps its state"


async def test_rate_gates_forget_a_gate_whose_window_has_passed() -> None:
    clock = VirtualClock()
    gates = RateGates(1, 1.0, clock, max_size=10)
    for i in range(10):
        await gates.get(f"old{i}").acquire()
    await clock.sleep(5.0)  # every window has passed: they are all idle now
    for i in range(10):
        gates.get(f"new{i}")
    assert len(gates) <= 10
