"""The healing actions, all real: a new debate through the queue, a webhook event, an archive.

Every effect is idempotent per heal job, so that a heal job run twice (its worker died after
acting, before recording) acts once: the new debate's id and the webhook jobs' ids derive from
the heal job's id, and enqueueing a known id does nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from queue_app.queue import DebateJobPayload, Job, JobQueue
from queue_app.queue.payloads import DEBATE_JOB_TYPE, DEBATE_QUEUE, QUESTION_PREVIEW_CHARS

from .store import HealingStore
from .types import HealingAction, HealingCandidate, HealingConfig, HealingResult

#: Namespace of the ids derived from heal job ids.
HEALING_NAMESPACE = uuid.UUID("0b5e7c1a-4d2f-4b8e-9a61-3c7d2e9f5a10")
#: Webhook event of each notifying action.
EVENTS = {
    HealingAction.NOTIFY_USER: "debate.healing_needed",
    HealingAction.ESCALATE: "debate.escalated",
}
RERUNS = frozenset(
    {HealingAction.RE_DEBATE, HealingAction.EXTEND_ROUNDS, HealingAction.ADD_MEDIATOR}
)


def rerun_payload(
    action: HealingAction, payload: dict[str, Any], config: HealingConfig, max_rounds: int
) -> dict[str, Any]:
    """Return the payload of the debate that re-runs ``payload`` for ``action``.

    More rounds stay within ``max_rounds`` (the queue's bound), and get proportionally more
    time when the debate had a timeout (a timed-out debate would time out again).

    Raises:
        InvalidJob: the old payload is not a valid debate.
    """
    debate = DebateJobPayload.from_dict(payload)
    extra: dict[str, Any] = {}
    if action is HealingAction.EXTEND_ROUNDS:
        rounds = min(debate.rounds + config.extend_rounds_by, max(max_rounds, debate.rounds))
        timeout = debate.timeout_seconds
        if timeout is not None:
            timeout = -(-timeout * rounds // debate.rounds)  # rounded up
        debate = dataclasses.replace(debate, rounds=rounds, timeout_seconds=timeout)
    elif action is HealingAction.ADD_MEDIATOR:
        mediator = config.mediator_agent or debate.agents[0]
        agents = debate.agents if mediator in debate.agents else [*debate.agents, mediator]
        debate = dataclasses.replace(debate, agents=agents, consensus="judge")
        extra["judge"] = mediator
    return {**debate.to_dict(), **extra}


class Healer:
    """Carry out healing actions on the queue and through the host's store."""

    def __init__(self, queue: JobQueue, store: HealingStore, config: HealingConfig) -> None:
        self.queue = queue
        self.store = store
        self.config = config

    async def act(
        self,
        action: HealingAction,
        candidate: HealingCandidate,
        heal_job_id: str,
        payload: dict[str, Any],
    ) -> HealingResult:
        """Do ``action`` for ``candidate`` (whose debate payload is ``payload``)."""
        if action in RERUNS:
            return await self._rerun(action, candidate, heal_job_id, payload)
        if action in EVENTS:
            return await self._notify(action, candidate, heal_job_id)
        archived = await self.store.archive(candidate.debate_id)
        message = "debate archived" if archived else "debate unknown to the ledger"
        return HealingResult(candidate.debate_id, action, archived, message)

    async def _rerun(
        self,
        action: HealingAction,
        candidate: HealingCandidate,
        heal_job_id: str,
        payload: dict[str, Any],
    ) -> HealingResult:
        max_rounds = self.queue.config.debate_max_rounds
        new_payload = rerun_payload(action, payload, self.config, max_rounds)
        meta = candidate.metadata
        job = Job(
            payload=new_payload,
            id=str(uuid.uuid5(HEALING_NAMESPACE, heal_job_id)),
            metadata={
                "job_type": DEBATE_JOB_TYPE,
                "question_preview": candidate.task[:QUESTION_PREVIEW_CHARS],
                "owner": meta.get("owner", ""),
                "organization": meta.get("organization", ""),
                "healing_of": candidate.debate_id,
                "healing_root": meta.get("root_debate_id", candidate.debate_id),
                "healing_action": action.value,
            },
        )
        await self.queue.enqueue(job, queue_name=DEBATE_QUEUE)
        rounds, consensus = new_payload["rounds"], new_payload["consensus"]
        message = f"enqueued debate {job.id} ({rounds} rounds, {consensus} consensus)"
        return HealingResult(candidate.debate_id, action, True, message, new_debate_id=job.id)

    async def _notify(
        self, action: HealingAction, candidate: HealingCandidate, heal_job_id: str
    ) -> HealingResult:
        if not self.config.notify_on_stuck:
            return HealingResult(candidate.debate_id, action, False, "notifications are off")
        event = EVENTS[action]
        meta = candidate.metadata
        data = {**candidate.to_dict(), "action": action.value, "event": event}
        deliveries = await self.store.notifications(
            event,
            data,
            owner=str(meta.get("owner") or ""),
            organization=str(meta.get("organization") or ""),
            key=heal_job_id,
        )
        for queue_name, job in deliveries:
            await self.queue.enqueue(job, queue_name=queue_name)
        message = f"{event} sent to {len(deliveries)} endpoint(s)"
        return HealingResult(candidate.debate_id, action, bool(deliveries), message)
