"""The durable work queue shared by every worker process: procrastinate on PostgreSQL.

Checked against the installed procrastinate 3.10 (``procrastinate/manager.py``, ``worker.py`` and
``sql/schema.sql``):

- ``Task.configure(lock=..., connection=...).defer_async`` inserts the job with an external psycopg
  connection, so the job and our delivery record commit in ONE transaction (durable before the webhook
  answers, and deduplicated: see :meth:`WorkQueue.defer`);
- ``procrastinate_fetch_job_v2`` never starts a job while a job with the same ``lock`` is ``doing`` or an
  earlier one (lower id, same priority) is ``todo``: with ``lock`` = the session key, one session's jobs
  run one at a time, in the order they were deferred, whichever worker runs them;
- workers heartbeat (``update_heartbeat_interval``) in ``procrastinate_workers``;
  ``JobManager.get_stalled_jobs(seconds_since_heartbeat=...)`` lists the ``doing`` jobs of workers that
  went silent (or were pruned), and ``JobManager.retry_job`` puts such a job back to ``todo`` with its id,
  so it still comes before the session's later jobs.

Two workers sweeping at once could both retry one job, the second after a live worker took it again; a
PostgreSQL advisory lock lets one sweep run at a time, which is the only coordination added here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
from procrastinate.exceptions import ConnectorException
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)
# procrastinate logs every job's arguments at INFO ("Starting job chatbot.reply[1](payload=...)"), and a
# payload holds what the user wrote: only its warnings reach our logs
logging.getLogger("procrastinate").setLevel(logging.WARNING)

TASK_NAME = "chatbot.reply"
POOL_WAIT = 5.0  # seconds to wait for a database connection: a webhook then answers 503 well within its time
SWEEP_LOCK = 0x63686174_626F7401  # advisory lock ids: one sweep of stalled jobs at a time ...
SCHEMA_LOCK = 0x63686174_626F7402  # ... and one schema installation
DELIVERIES = """
CREATE TABLE IF NOT EXISTS chatbot_deliveries (
    event_id text PRIMARY KEY,
    job_id bigint,
    received_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz,
    message jsonb
)
"""

JobHandler = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery's record: its reply finished (``done``), and the platform message it was last written in."""

    done: bool
    message: Any


class QueueUnavailable(Exception):
    """The queue's database could not take the job: the platform must be told to deliver again."""


@dataclass(frozen=True, slots=True)
class QueueTuning:
    """How often workers heartbeat and sweep, when one counts as dead, how many jobs run at once."""

    heartbeat: float = 2.0
    stalled_after: float = 10.0
    concurrency: int = 32


class WorkQueue:
    """One process's handle on the shared queue: defer jobs, run them, take over dead workers' jobs."""

    def __init__(self, url: str, tuning: QueueTuning | None = None) -> None:
        self.url = url
        self.tuning = tuning or QueueTuning()
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=url, min_size=2, max_size=16, timeout=POOL_WAIT)
        )
        self._handler: JobHandler | None = None
        # a job whose handler raised (the conversation store away for a moment) runs again, a few times;
        # the handler is idempotent per event (see adapters.work_queue.delivery)
        retry = procrastinate.RetryStrategy(max_attempts=3, wait=1)
        self.task = self.app.task(name=TASK_NAME, pass_context=False, retry=retry)(self._run)
        self._worker: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.taken_over = 0  # jobs this process put back in the queue after their worker died

    async def open(self) -> None:
        """Connect, and install procrastinate's schema and our delivery table if the database lacks them
        (several workers may start at once on a fresh database: an advisory lock serialises them)."""
        await self.app.open_async()
        try:
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                await conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
                try:
                    found = await (await conn.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
                    if found is None or found[0] is None:
                        await self.app.schema_manager.apply_schema_async()
                        log.info("work queue: procrastinate schema installed")
                    await conn.execute(DELIVERIES)
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
        except BaseException:
            await self.app.close_async()
            raise

    def _pool(self) -> AsyncConnectionPool:
        """procrastinate's connection pool (open once :meth:`open` returned), shared with our queries."""
        connector = self.app.connector
        assert isinstance(connector, procrastinate.PsycopgConnector)
        return connector.pool

    async def close(self) -> None:
        await self.stop_worker()
        await self.app.close_async()

    # -- ingress ---------------------------------------------------------------------------------

    async def defer(self, event_id: str, lock: str, payload: dict[str, Any]) -> bool:
        """Make ``payload`` durable pending work; ``False`` when ``event_id`` was deferred before (a
        platform's redelivery), ``True`` when this call deferred it. Raises :class:`QueueUnavailable`.

        The event's row in ``chatbot_deliveries`` and the job are inserted in one transaction: either both
        exist or neither, so a redelivery after a failure here defers again, and one after success does
        not. A unique key rather than procrastinate's ``queueing_lock``, which only holds while the job
        waits (``todo``): a redelivery that arrives while the first job runs, or after it ended, must not
        make a second job.
        """
        try:
            async with self._pool().connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    "INSERT INTO chatbot_deliveries (event_id) VALUES (%s) ON CONFLICT DO NOTHING",
                    (event_id,),
                )
                if cursor.rowcount == 0:
                    return False
                job_id = await self.task.configure(lock=lock, connection=conn).defer_async(payload=payload)
                await conn.execute(
                    "UPDATE chatbot_deliveries SET job_id = %s WHERE event_id = %s", (job_id, event_id)
                )
        except (psycopg.Error, ConnectorException, OSError) as exc:
            raise QueueUnavailable(f"the work queue could not take the job: {type(exc).__name__}") from exc
        return True

    # -- delivery records ------------------------------------------------------------------------

    async def delivery(self, event_id: str) -> Delivery:
        """What the runs of ``event_id``'s job did so far: finished? which platform message last?"""
        async with self._pool().connection() as conn:
            cursor = await conn.execute(
                "SELECT done_at IS NOT NULL, message FROM chatbot_deliveries WHERE event_id = %s", (event_id,)
            )
            row = await cursor.fetchone()
        return Delivery(bool(row[0]), row[1]) if row else Delivery(False, None)

    async def writing_in(self, event_id: str, message: Any) -> None:
        """The reply to ``event_id`` is now being written in platform message ``message`` (JSON).

        Kept here, beside the job, and written the moment the platform returned the message: a takeover
        must find it, and this database takes concurrent writes from every worker without queueing them
        behind a single writer (the conversation store's journal row is written too, later)."""
        async with self._pool().connection() as conn:
            await conn.execute(
                "UPDATE chatbot_deliveries SET message = %s WHERE event_id = %s", (Jsonb(message), event_id)
            )

    async def mark_done(self, event_id: str) -> None:
        async with self._pool().connection() as conn:
            await conn.execute(
                "UPDATE chatbot_deliveries SET done_at = now() WHERE event_id = %s", (event_id,)
            )

    # -- workers ---------------------------------------------------------------------------------

    def on_job(self, handler: JobHandler) -> None:
        """What runs each job (the runner's delivery); set before :meth:`start_worker`."""
        self._handler = handler

    async def _run(self, payload: dict[str, Any]) -> None:
        if self._handler is None:
            raise RuntimeError("work queue: no job handler")
        await self._handler(payload)

    def start_worker(self) -> None:
        """Run jobs (procrastinate's worker loop) and sweep for dead workers' jobs, in the background."""
        self._worker = asyncio.create_task(self._work_forever(), name="work-queue-worker")
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="work-queue-takeover")

    async def _work_forever(self) -> None:
        """procrastinate's worker loop, started again when it fails (the database away for a while)."""
        tuning = self.tuning
        while True:
            try:
                await self.app.run_worker_async(
                    concurrency=tuning.concurrency,
                    install_signal_handlers=False,
                    update_heartbeat_interval=tuning.heartbeat,
                    stalled_worker_timeout=tuning.stalled_after,
                    fetch_job_polling_interval=tuning.heartbeat,
                    # shutdown_graceful_timeout left at procrastinate's default, None (its TypedDict says
                    # float only): a stopping worker (a deploy) lets its jobs finish, however long (the
                    # engine's reply timeout bounds them); one killed before that is taken over like a dead one
                    delete_jobs="successful",
                )
                return
            except Exception as exc:
                log.error("work queue: the worker loop failed (%s); starting it again", type(exc).__name__)
                await asyncio.sleep(tuning.heartbeat)

    async def stop_worker(self) -> None:
        """Stop taking jobs and let the jobs in progress finish."""
        for task in (self._sweeper, self._worker):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("work queue: stopping failed")
        self._sweeper = self._worker = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tuning.heartbeat)
            try:
                await self.take_over_stalled()
            except Exception as exc:  # the database away for a moment: try again next time
                log.warning("work queue: looking for stalled jobs failed: %s", type(exc).__name__)

    async def take_over_stalled(self) -> int:
        """Put back in the queue the jobs of workers silent for ``stalled_after`` seconds; how many."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            got = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (SWEEP_LOCK,))).fetchone()
            if not got or not got[0]:
                return 0  # another worker is sweeping right now
            try:
                # typed Iterable: listed once, so the count below cannot come from an exhausted iterator
                stalled = list(
                    await self.app.job_manager.get_stalled_jobs(
                        task_name=TASK_NAME, seconds_since_heartbeat=self.tuning.stalled_after
                    )
                )
                for job in stalled:
                    await self.app.job_manager.retry_job(job)
                    log.warning("work queue: job %s of a dead worker taken over (lock %s)", job.id, job.lock)
                self.taken_over += len(stalled)
                return len(stalled)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))
