"""OutcomeWriter: buffer the ends of attempts and write them to the queue in batches.

Handlers finish one by one; their outcomes are written together in one ``finish_many`` call
(one script call per queue), by one writer task. The outcome of a job that ends while the worker
takes or waits for a free slot is held instead (``hold``) for the take that fills the slot, which
writes it in its round trip (``JobQueue.finish_and_take``). A batch that cannot be written stays
in the buffer and is tried again after a backoff, whatever the error: an outcome is never dropped
while the worker runs, and at shutdown the writer finishes the batch it is writing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from queue_app.queue import (
    FinishResult,
    Job,
    JobQueue,
    OutcomeRow,
    QueueConnectionError,
    QueueError,
)

from .backoff import Outage
from .middleware import MiddlewareChain, log_extra

logger = logging.getLogger(__name__)

#: Outcomes counted by the writer once written (``get_stats``).
COUNTED = ("completed", "failed", "retried", "cancelled", "deferred")


@dataclass(slots=True)
class Outcome:
    """The end of one attempt, waiting to be written in the next batch."""

    job: Job
    row: OutcomeRow
    #: ``completed``, ``failed``, ``retried`` or ``deferred`` (the ``on_outcome`` name).
    kind: str
    duration: float
    error: BaseException | None


class OutcomeWriter:
    """Write outcomes in batches from one task; keep them through Redis errors."""

    def __init__(self, queue: JobQueue, chain: MiddlewareChain, outage: Outage) -> None:
        self.queue = queue
        self.chain = chain
        self.outage = outage
        self.pending: list[Outcome] = []
        #: Outcomes the worker's next take writes (``hold``).
        self.held: list[Outcome] = []
        self.counters = dict.fromkeys(COUNTED, 0)
        #: True while the last write failed: the worker stops taking jobs until one succeeds.
        self.failing = False
        self._wanted = asyncio.Event()
        self._closing = False

    def add(self, outcome: Outcome) -> None:
        """Buffer ``outcome`` for the next batch."""
        self.pending.append(outcome)
        self._wanted.set()

    def hold(self, outcome: Outcome) -> None:
        """Keep ``outcome`` for the worker's next take, which writes it in the same round trip
        (``take_held``); the writer writes it only if the worker stops first."""
        self.held.append(outcome)

    def take_held(self) -> list[Outcome]:
        """Return the held outcomes; the caller writes them, or gives them back."""
        held, self.held = self.held, []
        return held

    def give_back(self, batch: list[Outcome]) -> None:
        """Have the writer write ``batch`` (held outcomes no take wrote) in its next batch."""
        if batch:
            self.pending = batch + self.pending
            self._wanted.set()

    def written(self, batch: list[Outcome], results: list[FinishResult | None]) -> None:
        """Report ``batch``, written by the worker's take; give back what was refused (None)."""
        refused = []
        for outcome, result in zip(batch, results, strict=True):
            if result is None:
                refused.append(outcome)
            else:
                self._report(outcome, result)
        if refused:
            self.give_back(refused)
        else:
            self._stalled(False)

    @property
    def unwritten(self) -> int:
        """Return how many outcomes wait to be written."""
        return len(self.pending) + len(self.held)

    async def run(self) -> None:
        """Write batches as outcomes arrive, until ``close()`` and the buffer is empty."""
        while not (self._closing and not self.pending):
            await self._wanted.wait()
            self._wanted.clear()
            await self.flush()

    async def close(self, task: asyncio.Task[None], timeout: float) -> None:
        """Let ``task`` (running ``run()``) write what is buffered, for up to ``timeout`` s."""
        self._closing = True
        self.give_back(self.take_held())
        self._wanted.set()
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            unwritten = len(self.pending)
            logger.error("Redis unreachable at shutdown: %d outcomes not written", unwritten)

    async def flush(self) -> None:
        """Write every buffered outcome in one batch; keep them and back off on any error."""
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                written = await self.queue.finish_many([o.row for o in batch])
            except QueueConnectionError as error:
                await self._keep(batch, error)
                continue
            except Exception as error:  # any other refusal (OOM, script error): keep, retry
                await self._keep(batch, QueueError(f"{type(error).__name__}: {error}"))
                continue
            self._stalled(False)
            self.outage.recovered()
            for outcome, result in zip(batch, written, strict=True):
                self._report(outcome, result)

    async def _keep(self, batch: list[Outcome], error: QueueError) -> None:
        self.pending = batch + self.pending
        self._stalled(True)
        await self.outage.wait(error)

    def _stalled(self, failing: bool) -> None:
        """Record whether writes fail; tell the middleware how many outcomes wait meanwhile."""
        if failing or self.failing:
            self.chain.emit("on_unwritten_outcomes", len(self.pending) if failing else 0)
        self.failing = failing

    def _report(self, outcome: Outcome, result: FinishResult) -> None:
        if not result.recorded:
            extra = log_extra(outcome.job, "job.fenced")
            logger.warning("outcome discarded: job was cancelled or taken over", extra=extra)
            return
        self.counters[outcome.kind] += 1
        self.chain.emit("on_outcome", outcome.job, outcome.kind, outcome.duration, outcome.error)
