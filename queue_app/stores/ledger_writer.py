"""LedgerWriter: drain the Redis job event streams into ``JobRecord`` rows, off the hot path.

Every enqueue, retry and terminal transition adds an event (job id, status) to the queue's
``P q:ledger`` stream inside the library's Lua scripts. The writer reads them in batches with the
jobs' current data, upserts one row per job in one transaction, enqueues the webhook jobs of the
batch's transitions (``queue_app.stores.transition_events``: ids fixed by the events, so a batch
read twice enqueues them once), and only then acknowledges the batch. A database outage
therefore delays the ledger and the events but loses neither, and never slows jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from queue_app.models import (
    HealingRecord,
    JobRecord,
    RouteDelivery,
    WebhookDelivery,
)
from queue_app.queue import (
    Job,
    QueueConfig,
    QueueConnectionError,
    RedisStreamsQueue,
    create_redis_queue,
)
from queue_app.queue.redis import LedgerEvent, LedgerReader
from queue_app.stores.db_thread import in_db_thread
from queue_app.stores.ledger_rows import stored_record_fields
from queue_app.stores.ledger_upsert import upsert_records
from queue_app.stores.transition_events import webhook_jobs
from workers.webhooks import WEBHOOKS_QUEUE

logger = logging.getLogger(__name__)

#: Seconds between retention sweeps of a running writer.
PRUNE_EVERY_SECONDS = 3600.0
#: Rows deleted per statement by a sweep.
PRUNE_CHUNK = 5000
#: Most batches stored after a stop, before the writer exits.
FINAL_BATCHES = 20
#: Longest back-off while Redis or the database is down.
MAX_BACKOFF_SECONDS = 30.0
#: Seconds ``run`` lets events gather after a batch that was not full: fewer, larger batches
#: (one hop to the database thread and one transaction each), and a job's enqueue and finish
#: events fall in one batch more often, so that its hash is read and its row written once.
SETTLE_SECONDS = 0.5
#: Longest time a writer beside a worker (``queue_worker``) waits while the process is busy
#: running jobs, before it drains anyway: jobs come first, the ledger lags by up to this much.
WORKER_DEFER_SECONDS = 10.0
#: Share of the time the event loop's thread ran or waited for a core, while the writer
#: waited, above which the process counts as busy.
BUSY_SHARE = 0.5
#: The calling thread's time on a core and waiting for one, in ns (Linux).
SCHEDSTAT = "/proc/thread-self/schedstat"


def _entry_key(entry: str) -> tuple[int, int]:
    """Order stream entry ids (``<ms>-<seq>``) numerically; "" sorts first."""
    ms, _, seq = entry.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() else (-1, -1)


def _latest_per_job(events: Sequence[LedgerEvent]) -> list[LedgerEvent]:
    """Keep the newest event of each job (all of a batch carry the data read with it)."""
    latest: dict[str, LedgerEvent] = {}
    for event in events:
        known = latest.get(event.job_id)
        if known is None or _entry_key(event.entry) > _entry_key(known.entry):
            latest[event.job_id] = event
    return list(latest.values())


def _row(event: LedgerEvent) -> dict[str, Any]:
    if event.stored is None:  # the job's hash expired: only what the event says is known
        fields: dict[str, Any] = {"queue": event.queue, "status": event.status}
    else:
        fields = stored_record_fields(event.stored)
    ms, seq = _entry_key(event.entry)
    return {
        **fields,
        "job_id": event.job_id,
        "ledger_entry": event.entry,
        "ledger_ms": ms,
        "ledger_seq": seq,
    }


def store_events(events: Sequence[LedgerEvent]) -> int:
    """Upsert one ledger row per job in one transaction; return how many jobs the batch had.

    Missing rows are inserted; an existing row is overwritten only from a newer event, so
    that concurrent writers (one beside each worker) never put an older state back. Events of
    expired jobs only create missing rows. Rows go in job id order, so that two writers lock
    shared rows in the same order.
    """
    written = {"recorded_at": timezone.now()}
    latest = sorted(_latest_per_job(events), key=lambda event: event.job_id)
    known = [_row(event) for event in latest if event.stored is not None]
    expired = [_row(event) for event in latest if event.stored is None]
    with transaction.atomic():
        upsert_records(known, overwrite=True, common=written)
        upsert_records(expired, overwrite=False, common=written)
    return len(latest)


def store_batch(events: Sequence[LedgerEvent]) -> list[Job]:
    """Store the batch's ledger rows; return the webhook jobs of its transitions."""
    store_events(events)
    return webhook_jobs(events)


def prune(retention_days: int) -> int:
    """Delete ledger rows, deliveries and healings older than ``retention_days``; count them."""
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted = 0
    aged = ((JobRecord, "recorded_at"), (WebhookDelivery, "delivered_at"))
    records = ((RouteDelivery, "delivered_at"), (HealingRecord, "created_at"))
    for model, field in (*aged, *records):
        old = model.objects.filter(**{f"{field}__lt": cutoff})
        while ids := list(old.values_list("pk", flat=True)[:PRUNE_CHUNK]):
            deleted += model.objects.filter(pk__in=ids).delete()[0]
    return deleted


class LedgerWriter:
    """Store job events as ledger rows: upsert a batch in one transaction, then acknowledge it.

    Pass the Redis client of the process (a worker's), or none to have the writer open and
    close its own. A database error leaves the batch unacknowledged in Redis: the writer logs
    once per outage, backs off and stores the batch when the database is back.
    """

    def __init__(
        self,
        redis_client: Any = None,
        *,
        consumer_name: str | None = None,
        config: QueueConfig,
        batch_size: int = 1000,
        block_ms: int = 1000,
        settle_seconds: float = SETTLE_SECONDS,
        defer_seconds: float = 0.0,
    ) -> None:
        self.config = config
        self.consumer_name = consumer_name or f"ledger-{socket.gethostname()}-{os.getpid()}"
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.settle_seconds = settle_seconds
        #: How long ``run`` may keep waiting while the process is busy (0: not at all).
        self.defer_seconds = defer_seconds
        #: Ledger rows older than this many days are deleted by ``run``.
        self.retention_days: int = settings.ARAGORA_LEDGER_RETENTION_DAYS
        self._client = redis_client
        self._own_queue: RedisStreamsQueue | None = None
        self._reader: LedgerReader | None = None
        self._events_queue: RedisStreamsQueue | None = None
        #: What is down ("Redis" or "database") and how many attempts failed since.
        self._down = ""
        self._failures = 0
        self._next_prune = 0.0

    @property
    def unavailable(self) -> str:
        """Return what is down ("Redis" or "database") since the last attempt, or ""."""
        return self._down

    async def _get_reader(self) -> LedgerReader:
        if self._reader is None:
            if self._client is None:
                self._own_queue = await create_redis_queue(
                    config=self.config, consumer_name=self.consumer_name
                )
                self._client = self._own_queue.redis
            self._reader = LedgerReader(self._client, self.consumer_name, self.config)
            self._events_queue = RedisStreamsQueue(self._client, self.consumer_name, self.config)
        return self._reader

    async def drain_once(self) -> int:
        """Read one batch (waiting up to ``block_ms``), store it and acknowledge it.

        Returns the number of events stored: 0 when none came or the database failed.

        Raises:
            QueueConnectionError: Redis is unreachable.
        """
        reader = await self._get_reader()
        events = await reader.read(count=self.batch_size, block_ms=self.block_ms)
        if self._down == "Redis":
            self._recovered()
        if not events:
            return 0
        try:
            deliveries = await in_db_thread(store_batch)(events)
        except DatabaseError as error:
            self._failed("database", error, len(events))
            reader.rewind()  # the next read returns these unacknowledged events again
            return 0
        if deliveries and self._events_queue is not None:
            try:
                await self._events_queue.enqueue_many(deliveries, WEBHOOKS_QUEUE)
            except QueueConnectionError:
                reader.rewind()  # stored again and enqueued once when Redis is back
                raise
        await reader.ack(events)
        self._recovered()
        return len(events)

    async def prune(self) -> int:
        """Delete rows past the retention period now; return how many."""
        return await in_db_thread(prune)(self.retention_days)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set, sweeping old rows hourly; back off while anything fails.

        Before the first batch and after one smaller than ``batch_size``, the writer lets events
        gather for ``settle_seconds``, then keeps waiting while the process is busy (its event
        loop ran or wanted a core more than ``BUSY_SHARE`` of the time), for up to
        ``defer_seconds`` in all; then
        it drains batch after batch until one is not full. A burst of jobs thus runs first and
        its events are stored after it, in full batches; nothing is dropped.

        Once stopped, the batches already waiting are stored (up to ``FINAL_BATCHES``) so that a
        worker run with ``--burst`` leaves a complete ledger; the rest waits in Redis.
        """
        try:
            caught_up = True
            while not stop.is_set():
                if caught_up:
                    await self._settle(stop)
                stored = await self._drain_step()
                if self._failures:
                    await _wait(stop, self._backoff_seconds())
                caught_up = not self._failures and stored < self.batch_size
            await self._store_waiting()
        finally:
            await self.close()

    async def _drain_step(self) -> int:
        """Drain one batch and sweep old rows when due; 0 when Redis failed."""
        try:
            stored = await self.drain_once()
            await self._prune_when_due()
        except QueueConnectionError as error:
            self._failed("Redis", error)
            return 0
        return stored

    async def _settle(self, stop: asyncio.Event) -> None:
        """Wait ``settle_seconds``, and again while the process is busy, up to ``defer_seconds``."""
        deadline = time.monotonic() + self.defer_seconds
        while not stop.is_set():
            demand, started = _loop_demand(), time.monotonic()
            await _wait(stop, self.settle_seconds)
            elapsed = max(time.monotonic() - started, 1e-3)
            busy = (_loop_demand() - demand) / elapsed > BUSY_SHARE
            if not busy or time.monotonic() >= deadline:
                return

    async def _store_waiting(self) -> None:
        if self._down:
            return
        self.block_ms = 1  # do not wait for new events any more
        with contextlib.suppress(QueueConnectionError):
            for _ in range(FINAL_BATCHES):
                if not await self.drain_once() or self._down:
                    return

    async def close(self) -> None:
        """Close the Redis client when the writer opened it."""
        if self._own_queue is not None:
            await self._own_queue.close()
            self._own_queue = self._client = self._reader = self._events_queue = None

    async def _prune_when_due(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        try:
            deleted = await self.prune()
        except DatabaseError as error:
            self._failed("database", error)
            return
        if self._down == "database":
            self._recovered()
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        if deleted:
            logger.info("ledger: deleted %d rows older than %d days", deleted, self.retention_days)

    def _failed(self, what: str, error: Exception, waiting: int = 0) -> None:
        if self._down != what:
            logger.warning(
                "ledger: %s unavailable, %d events stay in Redis until it is back: %s",
                what,
                waiting,
                error,
            )
            self._down, self._failures = what, 0
        self._failures += 1

    def _recovered(self) -> None:
        if self._down:
            logger.info("ledger: %s is back after %d failed attempts", self._down, self._failures)
            self._down, self._failures = "", 0

    def _backoff_seconds(self) -> float:
        base = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(self._failures - 1, 10))
        return base * random.uniform(0.8, 1.2)


def _loop_demand() -> float:
    """Return the seconds this thread ran or waited to run: a loaded machine's queue for a core
    counts, so that a busy worker is seen as busy however little CPU it gets (else CPU time)."""
    try:
        with open(SCHEDSTAT) as stats:
            on_cpu, waiting, _ = stats.read().split()
    except (OSError, ValueError):
        return time.thread_time()
    return (int(on_cpu) + int(waiting)) / 1e9


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
