"""Routing jobs: job types, the payload as the worker reads it, enqueueing and recovery.

A routing job carries the debate's id and, usually, its result; never where to send it. The
worker reads the destination from the debate job's recorded origin (``routing``,
``routing_debate``) or from ``recipient_email`` (``routing_email``), so that incoming-webhook
URLs never travel in routing payloads.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from queue_app.queue import InvalidJob, Job, JobQueue
from queue_app.queue.origin import EMAIL_ADDRESS

from ..jobs import check_payload_keys, recover_interrupted, scoped_job

ROUTING_QUEUE = "routing"
JOB_TYPE_ROUTING = "routing"
JOB_TYPE_ROUTING_DEBATE = "routing_debate"
JOB_TYPE_ROUTING_EMAIL = "routing_email"
JOB_TYPES = (JOB_TYPE_ROUTING, JOB_TYPE_ROUTING_DEBATE, JOB_TYPE_ROUTING_EMAIL)
DEFAULT_MAX_ATTEMPTS = 5
#: Largest result carried in a routing job, as JSON.
MAX_RESULT_BYTES = 256 * 1024
PAYLOAD_KEYS = frozenset({"debate_id", "result", "include_voice", "recipient_email"})
_ROUTE_NAMESPACE = uuid.UUID("0b7b1c8e-3f42-4d7a-9a51-6d2f0c9e4a13")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingPayload:
    """Input of a routing job."""

    job_type: str
    debate_id: str
    #: The debate's result (None: read it from the debate job once it completed).
    result: dict[str, Any] | None = None
    #: Accepted for the reference's signature; results are sent as text only.
    include_voice: bool = False
    recipient_email: str | None = None

    def __post_init__(self) -> None:
        if self.job_type not in JOB_TYPES:
            raise InvalidJob(f"job_type must be one of {', '.join(JOB_TYPES)}")
        if not isinstance(self.debate_id, str) or not self.debate_id:
            raise InvalidJob("debate_id must be a non-empty string")
        if self.result is not None and not isinstance(self.result, dict):
            raise InvalidJob("result must be a JSON object")
        if self.result is not None and len(json.dumps(self.result)) > MAX_RESULT_BYTES:
            raise InvalidJob(f"result must be at most {MAX_RESULT_BYTES} bytes of JSON")
        email = self.recipient_email
        if self.job_type == JOB_TYPE_ROUTING_EMAIL and email is None:
            raise InvalidJob("recipient_email is required for routing_email")
        if email is not None and not (isinstance(email, str) and EMAIL_ADDRESS.match(email)):
            raise InvalidJob("recipient_email must be an email address")

    @classmethod
    def from_payload(cls, job_type: str, payload: Mapping[str, Any]) -> RoutingPayload:
        """Read a payload (``InvalidJob`` for unknown keys or bad values)."""
        check_payload_keys(payload, PAYLOAD_KEYS, "routing")
        return cls(
            job_type=job_type,
            debate_id=payload.get("debate_id", ""),
            result=payload.get("result"),
            include_voice=bool(payload.get("include_voice", False)),
            recipient_email=payload.get("recipient_email"),
        )

    @classmethod
    def from_job(cls, job: Job) -> RoutingPayload:
        """Read the payload of a routing job."""
        return cls.from_payload(job.job_type, job.payload)


def routing_job_id(debate_id: str) -> str:
    """Return the id of the routing job of a finished debate (one per debate, on any retry)."""
    return str(uuid.uuid5(_ROUTE_NAMESPACE, debate_id))


def create_routing_job(
    debate_id: str,
    result: Mapping[str, Any] | None = None,
    job_type: str = JOB_TYPE_ROUTING_DEBATE,
    *,
    job_id: str | None = None,
    include_voice: bool = False,
    recipient_email: str | None = None,
    user_id: str | int | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Job:
    """Build a routing job (``InvalidJob`` for bad input)."""
    payload: dict[str, Any] = {"debate_id": debate_id, "include_voice": include_voice}
    if result is not None:
        payload["result"] = dict(result)
    if recipient_email is not None:
        payload["recipient_email"] = recipient_email
    RoutingPayload.from_payload(job_type, payload)
    return scoped_job(
        payload,
        job_type,
        job_id=job_id,
        owner=None if user_id in (None, "") else str(user_id),  # "": no owner
        organization=workspace_id,
        priority=priority,
        max_attempts=max_attempts,
    )


async def enqueue_routing_job(
    queue: JobQueue,
    job_id: str | None,
    debate_id: str,
    result: Mapping[str, Any] | None,
    job_type: str = JOB_TYPE_ROUTING_DEBATE,
    include_voice: bool = False,
    recipient_email: str | None = None,
    user_id: str | int | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    *,
    queue_name: str = ROUTING_QUEUE,
) -> Job:
    """Enqueue the routing of a debate's result (5 attempts); an id already known is a no-op."""
    job = create_routing_job(
        debate_id,
        result,
        job_type,
        job_id=job_id,
        include_voice=include_voice,
        recipient_email=recipient_email,
        user_id=user_id,
        workspace_id=workspace_id,
        priority=priority,
    )
    await queue.enqueue(job, priority, queue_name)
    return job


async def recover_interrupted_routing(
    queue: JobQueue, idle_ms: int | None = None, *, queue_name: str = ROUTING_QUEUE
) -> int:
    """Take over routing deliveries whose worker died; return how many.

    Only the ``routing`` queue is touched (the reference reset every kind's jobs). ``queue``'s
    consumer runs them on its next read; workers also do this every ``claim_idle_ms / 2``.
    """
    return await recover_interrupted(queue, idle_ms, queue_name)
