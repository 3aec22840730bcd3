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

from queue_app.queue import (
    Job,
    JobQueue,
    RetryPolicy,
    create_redis_queue,
    get_queue_config,
)

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
from .probes import GauntletInput, read_input
from .stress import run_probes

logger = logging.getLogger(__name__)

JOB_TYPE_GAUNTLET = "gauntlet"
GAUNTLET_QUEUE = "gauntlet"
#: Deliveries idle this long count as interrupted for ``recover_interrupted_gauntlets``.
STALE_AFTER_MS = 300_000

#: Receives the gauntlet's events: started, each probe done, completed (sync or async).
BroadcastFn = Callable[[dict[str, Any]], Any]


def gauntlet_job(
    gauntlet_id: str,
    input_content: str,
    input_type: str,
    persona: str | None,
    agents: list[str] | None,
    profile: str = "default",
    user_id: str | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    *,
    max_duration_seconds: float | None = None,
) -> Job:
    """Build (without enqueueing) the gauntlet job; its id is ``gauntlet_id``.

    Raises:
        InvalidJob: the content, agents, profile or duration are not valid.
    """
    payload: dict[str, Any] = {
        "gauntlet_id": gauntlet_id,
        "input_content": input_content,
        "input_type": input_type,
        "persona": persona,
        "agents": agents,
        "profile": profile,
        "user_id": user_id,
        "workspace_id": workspace_id,
    }
    if max_duration_seconds is not None:
        payload["max_duration_seconds"] = max_duration_seconds
    read_input(gauntlet_id, payload)
    return Job(
        payload=payload,
        id=gauntlet_id,
        priority=priority,
        metadata={"job_type": JOB_TYPE_GAUNTLET},
    )


async def enqueue_gauntlet_job(
    gauntlet_id: str,
    input_content: str,
    input_type: str,
    persona: str | None,
    agents: list[str] | None,
    profile: str = "default",
    user_id: str | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    *,
    queue: JobQueue | None = None,
) -> Job:
    """Enqueue a gauntlet on the ``gauntlet`` queue (a no-op when its id is already known).

    Without ``queue`` it connects with the process-wide config for this one call.
    """
    job = gauntlet_job(
        gauntlet_id,
        input_content,
        input_type,
        persona,
        agents,
        profile,
        user_id,
        workspace_id,
        priority,
    )
    own = queue is None
    target = queue or await create_redis_queue(config=get_queue_config())
    try:
        await target.enqueue(job, priority=priority, queue_name=GAUNTLET_QUEUE)
    finally:
        if own:
            await target.close()
    return job


async def recover_interrupted_gauntlets(queue: JobQueue, idle_ms: int = STALE_AFTER_MS) -> int:
    """Take over gauntlet deliveries idle past ``idle_ms`` (their worker died); return how many.

    Only the ``gauntlet`` queue is touched. The taken deliveries start at this consumer's next
    read, so call it with the queue of a running gauntlet worker (whose maintenance loop also
    does this every ``claim_idle_ms``).
    """
    return await queue.claim_stale_jobs(idle_ms, [GAUNTLET_QUEUE])


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
