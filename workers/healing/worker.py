"""ConsensusHealingWorker: finds debates that ended without consensus and heals them.

A scan (every ``scan_interval_seconds``, by exactly one process: the holder of a Redis lease)
reads the ledger's unhealthy debates in the age window and enqueues one ``consensus_heal`` job
per debate and attempt, with an id made of both: scanning the same state again, or after a
crash, enqueues nothing new. Any healing worker runs those jobs: it chooses the action, does
it (``actions.Healer``) and records the result in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Unpack

from queue_app.queue import ConfigError, Job, JobQueue, QueueConnectionError

from ..metrics import record_healing, record_healing_candidate
from ..runtime import KindContext, KindWorker, RuntimeArguments, WorkerOptions
from .actions import Healer
from .rules import candidate_of, choose_action
from .store import HealingRecord, HealingStore
from .types import HealingCandidate, HealingConfig, HealingResult

logger = logging.getLogger(__name__)

HEALING_QUEUE = "consensus_healing"
JOB_TYPE_CONSENSUS_HEAL = "consensus_heal"
#: Lease held by the one process that scans.
SCAN_LEASE = "consensus-healing-scan"
#: Debates handled per scan (the reference's bound).
MAX_CANDIDATES_PER_SCAN = 10
#: Seconds a scan waits after an error before trying again.
ERROR_PAUSE_SECONDS = 30.0
#: Results kept for ``get_metrics()``.
RECENT_RESULTS = 10


def heal_job_id(debate_id: str, attempt: int) -> str:
    """Return the id of the heal job of ``attempt`` on ``debate_id`` (one job per scan result)."""
    return f"heal:{debate_id}:{attempt}"


class ConsensusHealingWorker(KindWorker):
    """Worker for the ``consensus_healing`` queue; it also scans for debates to heal."""

    QUEUE_NAME: ClassVar[str] = HEALING_QUEUE
    #: Jobs at once without ``--concurrency`` (README): heal jobs are few and light.
    DEFAULT_CONCURRENCY: ClassVar[int] = 2

    def __init__(
        self,
        worker_id: str | None = None,
        config: HealingConfig | None = None,
        on_healing_needed: Callable[[HealingCandidate], None] | None = None,
        on_healing_complete: Callable[[HealingResult], None] | None = None,
        *,
        queue: JobQueue,
        store: HealingStore,
        max_concurrent: int = 2,
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        self.config = config or HealingConfig()
        self.store = store
        self.on_healing_needed = on_healing_needed
        self.on_healing_complete = on_healing_complete
        self.healer = Healer(queue, store, self.config)
        self.counts = dict.fromkeys(("scans", "candidates", "attempted", "succeeded", "failed"), 0)
        self.recent: deque[HealingResult] = deque(maxlen=RECENT_RESULTS)
        self.holds_lease = False
        super().__init__(
            queue,
            {JOB_TYPE_CONSENSUS_HEAL: self.heal},
            worker_id or f"consensus-healer-{os.getpid()}",
            max_concurrent,
            **runtime,
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> ConsensusHealingWorker:
        """Build the worker over the healing store and settings of ``context``."""
        if context.healing_store is None:
            raise ConfigError("the consensus_healing queue needs a HealingStore")
        return cls(
            options.worker_id,
            context.healing,
            queue=queue,
            store=context.healing_store,
            max_concurrent=cls.concurrency(options),
            **context.runtime_arguments(options),
        )

    # -- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Scan and heal until stopped; in burst mode scan once, heal what it found, return."""
        if self.options.burst:
            await self.scan_once()
            return await super().start()
        scanner = asyncio.create_task(self._scan_loop(), name=f"{self.worker_id}-scan")
        try:
            await super().start()
        finally:
            scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scanner
            with contextlib.suppress(QueueConnectionError):
                await self.queue.release_lease(SCAN_LEASE, self.worker_id)

    async def _scan_loop(self) -> None:
        while True:
            pause = self.config.scan_interval_seconds
            try:
                await self.scan_once()
            except QueueConnectionError as error:
                logger.warning("healing scan skipped: %s", error)
            except Exception:  # a scan bug must not stop the worker; the next scan retries
                logger.exception("healing scan failed")
                pause = ERROR_PAUSE_SECONDS
            await asyncio.sleep(pause)

    async def scan_once(self) -> int:
        """Scan once if this process holds the scan lease; return the heal jobs enqueued."""
        lease_seconds = max(2 * self.config.scan_interval_seconds, 10.0)
        self.holds_lease = await self.queue.acquire_lease(SCAN_LEASE, self.worker_id, lease_seconds)
        if not self.holds_lease:
            return 0
        now = time.time()
        debates = await self.store.unhealthy_debates(
            completed_after=now - self.config.max_age_for_healing_seconds,
            completed_before=now - self.config.min_age_for_healing_seconds,
            max_attempts=self.config.max_healing_attempts,
            limit=MAX_CANDIDATES_PER_SCAN,
        )
        enqueued = 0
        for debate in debates:
            live = await self.queue.get_status(debate.debate_id)
            candidate = candidate_of(debate, live.progress if live else None, self.config)
            if candidate is None:
                continue
            self.counts["candidates"] += 1
            record_healing_candidate(candidate.reason.value)
            self._notify(self.on_healing_needed, candidate)
            job = Job(
                payload={"candidate": candidate.to_dict(), "debate_payload": debate.payload},
                id=heal_job_id(debate.root_debate_id, debate.attempts + 1),
                metadata={
                    "job_type": JOB_TYPE_CONSENSUS_HEAL,
                    "owner": debate.owner,
                    "organization": debate.organization,
                },
            )
            await self.queue.enqueue(job, queue_name=HEALING_QUEUE)
            enqueued += 1
        self.counts["scans"] += 1
        return enqueued

    async def heal(self, job: Job) -> dict[str, Any]:
        """Run one heal job: choose the action, do it, record it; return the result."""
        candidate = HealingCandidate.from_dict(job.payload["candidate"])
        attempts = int(candidate.metadata.get("attempts") or 0)
        action = choose_action(candidate, attempts, self.config)
        result = await self.healer.act(action, candidate, job.id, job.payload["debate_payload"])
        result.metrics = {
            "reason": candidate.reason.value,
            "attempt": attempts + 1,
            "consensus_probability": candidate.consensus_probability,
            "convergence_trend": candidate.convergence_trend,
            "rounds_completed": candidate.rounds_completed,
        }
        record = HealingRecord(
            heal_job_id=job.id,
            root_debate_id=str(candidate.metadata.get("root_debate_id") or candidate.debate_id),
            attempt=attempts + 1,
            reason=candidate.reason,
            result=result,
        )
        if await self.store.record(record):
            self._count(result, candidate)
        return result.to_dict()

    def _count(self, result: HealingResult, candidate: HealingCandidate) -> None:
        self.counts["attempted"] += 1
        self.counts["succeeded" if result.success else "failed"] += 1
        self.recent.append(result)
        record_healing(candidate.reason.value, result.action.value, result.success)
        self._notify(self.on_healing_complete, result)

    def _notify(self, callback: Callable[[Any], None] | None, value: Any) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception:  # a listener's bug must not fail the healing
            logger.warning("healing callback %r failed", callback, exc_info=True)

    # -- the reference's reports ----------------------------------------------------------------

    def get_metrics(self) -> dict[str, Any]:
        """Return scan, candidate and healing counters, the success rate and recent results."""
        attempted = self.counts["attempted"]
        return {
            "scans_completed": self.counts["scans"],
            "candidates_found": self.counts["candidates"],
            "healings_attempted": attempted,
            "healings_succeeded": self.counts["succeeded"],
            "healings_failed": self.counts["failed"],
            "success_rate": self.counts["succeeded"] / attempted if attempted else 0.0,
            "recent_results": [result.to_dict() for result in self.recent],
        }

    def get_status(self) -> dict[str, Any]:
        """Return the worker's state, its metrics and the main settings."""
        config = self.config
        return {
            "worker_id": self.worker_id,
            "running": self.is_running,
            "holds_scan_lease": self.holds_lease,
            **self.get_metrics(),
            "config": {
                "scan_interval_seconds": config.scan_interval_seconds,
                "min_age_for_healing_seconds": config.min_age_for_healing_seconds,
                "max_age_for_healing_seconds": config.max_age_for_healing_seconds,
                "max_healing_attempts": config.max_healing_attempts,
                "auto_redebate_enabled": config.auto_redebate_enabled,
            },
        }
