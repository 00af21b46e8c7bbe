"""The fake model server (tests/fakes/openai_server.py) as its own process, for checks that run an
installed ``chatbot`` outside the source tree.

Prints its base URL as the first line of stdout, then serves until its standard input closes (so it never
outlives the process that started it) or ``MAX_SECONDS`` pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading

from tests.fakes.openai_server import FakeOpenAI

MAX_SECONDS = 600


async def serve() -> None:
    server = FakeOpenAI()
    print(await server.start(), flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stdin_closed.set)

    # a daemon thread, so a timeout does not wait for the blocked read on the way out
    threading.Thread(target=wait_for_eof, daemon=True).start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stdin_closed.wait(), MAX_SECONDS)
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(serve())
