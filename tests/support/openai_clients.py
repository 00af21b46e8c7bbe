"""openai clients made by test helpers, closed in the test's own event loop.

A client left to the garbage collector closes itself on whatever loop runs then, and fails another test
with "Event loop is closed". Import ``close_clients`` into a test module (it is autouse) and make clients
with :func:`client_for`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_server import FakeOpenAI

_CLIENTS: list[AsyncOpenAI] = []


def client_for(fake_model: FakeOpenAI, *, max_retries: int = 0) -> AsyncOpenAI:
    """A client of the fake model server, closed when the test ends."""
    client = AsyncOpenAI(base_url=fake_model.base_url, api_key="sk-test", max_retries=max_retries)
    _CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _CLIENTS:
        await _CLIENTS.pop().close()
