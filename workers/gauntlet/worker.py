"""GauntletWorker: stress-tests content with adversarial probes asked of auditor agents.

The result keeps the verdict, confidence, risk and every finding with its probe (the
reference stores only the verdict); the job id is the gauntlet id.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Unpack

from queue_app.queue import Job, JobQueue, RetryPolicy

from ..agents import AgentPool, AgentSettings
from ..runtime import (
    Closer,
    KindContext,
    KindWorker,
    RuntimeArguments,
    WorkerOptions,
    report_progress,
)
from .assessment import assess
from .jobs import GAUNTLET_QUEUE, JOB_TYPE_GAUNTLET
from .probes import GauntletInput, read_input
from .stress import run_probes

logger = logging.getLogger(__name__)

#: Receives the gauntlet's events: started, each probe done, completed (sync or async).
BroadcastFn = Callable[[dict[str, Any]], Any]


class GauntletWorker(KindWorker):
    """Worker for the ``gauntlet`` queue: each job stress-tests one piece of content."""

    QUEUE_NAME: ClassVar[str] = GAUNTLET_QUEUE
    #: Jobs at once without ``--concurrency`` (README): each asks many agents at once.
    DEFAULT_CONCURRENCY: ClassVar[int] = 3

    def __init__(
        self,
        queue: JobQueue,
        worker_id: str | None = None,
        max_concurrent: int = 3,
        broadcast_fn: BroadcastFn | None = None,
        retry_policy: RetryPolicy | None = None,
        *,
        agents: AgentPool | None = None,
        closers: Sequence[Closer] = (),
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        self.broadcast_fn = broadcast_fn
        self.agents = agents or AgentPool()
        super().__init__(
            queue,
            {JOB_TYPE_GAUNTLET: self.run_gauntlet},
            worker_id or f"gauntlet-worker-{os.getpid()}",
            max_concurrent,
            retry_policy=retry_policy,
            closers=(*closers, self.agents.aclose),
            **runtime,
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> GauntletWorker:
        """Build the worker with the agents configured in ``context``."""
        return cls(
            queue,
            options.worker_id,
            cls.concurrency(options),
            agents=AgentPool(AgentSettings.from_env(context.agent_env)),
            **context.runtime_arguments(options),
        )

    async def run_gauntlet(self, job: Job) -> dict[str, Any]:
        """Run the probes of the job's profile and return the assessment."""
        started = time.monotonic()
        gauntlet = read_input(job.id, job.payload)
        auditors = self.agents.agents(list(gauntlet.agents))
        probes = [probe.name for probe in gauntlet.probes]
        await self._broadcast({"type": "gauntlet_started", "probes": probes}, gauntlet)
        done: list[str] = []

        async def on_probe(report: dict[str, Any]) -> None:
            done.append(report["probe"])
            await report_progress({"probes_done": len(done), "probes_total": len(probes)})
            await self._broadcast({"type": "probe_completed", **report}, gauntlet)

        reports, incomplete = await run_probes(gauntlet, auditors, on_probe)
        result = {
            "gauntlet_id": gauntlet.gauntlet_id,
            **assess(reports, incomplete),
            "input_type": gauntlet.input_type,
            "profile": gauntlet.profile,
            "persona": gauntlet.persona,
            "agents": list(gauntlet.agents),
            "duration_seconds": round(time.monotonic() - started, 3),
        }
        summary = {k: result[k] for k in ("verdict", "confidence", "risk", "duration_seconds")}
        await self._broadcast({"type": "gauntlet_completed", **summary}, gauntlet)
        return result

    async def _broadcast(self, event: dict[str, Any], gauntlet: GauntletInput) -> None:
        """Pass ``event`` to ``broadcast_fn``; its failures are logged, never the job's."""
        if self.broadcast_fn is None:
            return
        try:
            sent = self.broadcast_fn({**event, "gauntlet_id": gauntlet.gauntlet_id})
            if inspect.isawaitable(sent):
                await sent
        except Exception:  # a listener's bug must not fail the stress test
            logger.warning("gauntlet %s: broadcast failed", gauntlet.gauntlet_id, exc_info=True)
