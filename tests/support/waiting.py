"""Waiting for a condition the code under test reaches on its own, with a deadline instead of a guessed
sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Return once ``check()`` holds; fail the test if it does not within ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
