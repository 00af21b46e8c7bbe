"""N ``chatbot run --platform telegram`` worker processes sharing a work queue, for the multi-worker tests
and the workers bench: each its own webhook port on loopback, the queue in PostgreSQL, the conversations in
the database :func:`conversation_db_env` names."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.support.cli import start_chatbot
from tests.support.services import free_port

WEBHOOK_SECRET = "queue-test-secret_1"
WEBHOOK_PATH = "/telegram-webhook"


def conversation_db_env(tmp_path: Path) -> dict[str, str]:
    """Where the workers keep conversations: ONE SQLite file they share (WAL works across processes on one
    machine). The one place to switch to the PostgreSQL store (``CHATBOT_DATABASE_URL``) once it exists."""
    return {"CHATBOT_DB": str(tmp_path / "conversations.db")}


def worker_env(
    fake_model: FakeOpenAI, telegram: FakeTelegram, queue_url: str, conversations: dict[str, str], port: int
) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "sk-test-secret-key-123456",
        "CHATBOT_MODEL": "gpt-4o-mini",
        "CHATBOT_MAX_RETRIES": "0",
        "CHATBOT_LOG_FILE": "",
        "CHATBOT_LOG_LEVEL": "WARNING",
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_BASE_URL": telegram.root,
        # the address the load balancer has (set with setWebhook); each worker listens on its own port
        "TELEGRAM_WEBHOOK_URL": f"https://bot.example.org{WEBHOOK_PATH}",
        "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        "TELEGRAM_WEBHOOK_PORT": str(port),
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # replies written by editing a message, the harder case for a takeover: a private chat's draft
        # (sendMessageDraft) leaves nothing behind when its worker dies, a message does
        "TELEGRAM_DRAFTS": "false",
        "CHATBOT_QUEUE_URL": queue_url,
        # quick takeover for tests: heartbeat every second, dead after 5 s silent. With 2 s, a live worker whose
        # event loop a loaded machine holds up that long looks dead and its job is run a second time (the
        # fault test failed so under other test runs beside it); production defaults are 2 s and 10 s
        "CHATBOT_QUEUE_HEARTBEAT": "1",
        "CHATBOT_QUEUE_STALLED_AFTER": "5",
        **conversations,
    }


@dataclass
class Worker:
    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"


@dataclass
class Workers:
    """Worker processes; :meth:`kill` is a crash (SIGKILL), :meth:`stop` a clean shutdown of the rest."""

    cwd: Path
    base_env: dict[str, str]
    fake_model: FakeOpenAI
    telegram: FakeTelegram
    queue_url: str
    workers: list[Worker] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [w.url for w in self.workers]

    async def start(self, count: int, within: float = 60.0) -> None:
        for _ in range(count):
            port = free_port()
            env = worker_env(self.fake_model, self.telegram, self.queue_url, self.base_env, port)
            log = self.cwd / f"worker-{len(self.workers)}.log"
            with log.open("wb") as stderr:  # the child keeps its own copy of the file
                process = await start_chatbot(["run", "--platform", "telegram"], self.cwd, env, stderr=stderr)
            self.workers.append(Worker(port, process, log))
        await asyncio.gather(*(self._ready(w, within) for w in self.workers))

    async def _ready(self, worker: Worker, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            if worker.process.returncode is not None:
                log = worker.log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"worker on port {worker.port} exited: {log}")
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                assert time.monotonic() < deadline, f"worker on port {worker.port} did not start"
                await asyncio.sleep(0.1)

    async def kill(self, index: int) -> None:
        process = self.workers[index].process
        process.kill()
        await process.wait()

    async def stop(self, within: float = 30.0) -> list[str]:
        """SIGTERM every live worker and wait; the end of each one's log (for failures)."""
        for worker in self.workers:
            if worker.process.returncode is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.process.wait(), within)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
        return [worker.log.read_text(errors="replace")[-3000:] for worker in self.workers]
