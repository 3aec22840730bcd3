"""Job, JobStatus and the abstract JobQueue: the single queue interface."""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .config import QueueConfig
from .records import RecordStore
from .retry import RetryPolicy


class JobStatus(StrEnum):
    """Lifecycle states of a job (values are stored in Redis as is)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRYING = "retrying"

    @property
    def is_terminal(self) -> bool:
        """Tell whether no further transition can happen from this state."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
#: Metadata keys that scope a job: whose it is. Each set one indexes the job for scoped listings.
SCOPE_KEYS = ("owner", "organization")


def scope_tags(metadata: Mapping[str, Any]) -> list[str]:
    """Return the scope tags of a job's metadata: ``owner:<id>``, ``organization:<name>``."""
    return [f"{key}:{metadata[key]}" for key in SCOPE_KEYS if metadata.get(key)]


def _new_id() -> str:
    """Return a random (version 4) UUID as text: ``str(uuid.uuid4())`` in a third of its time."""
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


@dataclass
class Job:
    """One enqueued run of work with a JSON payload."""

    #: JSON-serialisable input of the job.
    payload: dict[str, Any]
    #: Unique id (uuid4 string unless given).
    id: str = field(default_factory=_new_id)
    status: JobStatus = JobStatus.PENDING
    #: Unix timestamps in seconds.
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    #: Number of times the job was started (deliveries that ran).
    attempts: int = 0
    max_attempts: int = 3
    error: str | None = None
    worker_id: str | None = None
    priority: int = 0
    #: Free-form JSON data: job type, trace context, caller tags.
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Result recorded by ``mark_completed`` / ``JobQueue.complete``.
    result: Any = None
    #: Name of the queue the job was enqueued on (set by the queue).
    queue: str | None = None
    #: JSON progress reported by the running handler (``RedisStreamsQueue.set_progress``).
    progress: Any = None
    #: Fencing token of the delivery this object was started from (set by dequeue, not stored):
    #: an outcome written with it is refused once the job was cancelled or delivered again.
    delivery_token: str | None = field(default=None, repr=False, compare=False)

    def mark_processing(self, worker_id: str) -> None:
        """Record that ``worker_id`` started the job."""
        self.status = JobStatus.PROCESSING
        self.worker_id = worker_id
        self.started_at = time.time()
        self.attempts += 1

    def mark_completed(self, result: Any = None) -> None:
        """Record a successful run and its result."""
        self.status = JobStatus.COMPLETED
        self.completed_at = time.time()
        self.result = result
        self.error = None

    def mark_failed(self, error: str) -> None:
        """Record a final failure."""
        self.status = JobStatus.FAILED
        self.completed_at = time.time()
        self.error = error

    def mark_retrying(self, error: str) -> None:
        """Record a failure that will be retried."""
        self.status = JobStatus.RETRYING
        self.error = error

    def should_retry(self) -> bool:
        """Tell whether another attempt is allowed."""
        return self.attempts < self.max_attempts

    @property
    def job_type(self) -> str:
        """Return the job type from metadata (``debate`` when unset)."""
        return str(self.metadata.get("job_type") or "debate")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return {
            "id": self.id,
            "payload": self.payload,
            "status": self.status.value,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "error": self.error,
            "worker_id": self.worker_id,
            "priority": self.priority,
            "metadata": self.metadata,
            "result": self.result,
            "queue": self.queue,
            "progress": self.progress,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """Build a job from ``to_dict`` output (unknown keys are ignored)."""
        return cls(
            payload=dict(data.get("payload") or {}),
            id=str(data.get("id") or _new_id()),
            status=JobStatus(data.get("status") or JobStatus.PENDING),
            created_at=_created_at(data.get("created_at")),
            started_at=_float_or_none(data.get("started_at")),
            completed_at=_float_or_none(data.get("completed_at")),
            attempts=int(data.get("attempts") or 0),
            max_attempts=int(data.get("max_attempts") or 3),
            error=data.get("error") or None,
            worker_id=data.get("worker_id") or None,
            priority=int(data.get("priority") or 0),
            metadata=dict(data.get("metadata") or {}),
            result=data.get("result"),
            queue=data.get("queue") or None,
            progress=data.get("progress"),
        )


def _float_or_none(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _created_at(value: Any) -> float:
    """Return the stored creation time; now only when none is stored (0 is a time too)."""
    stored = _float_or_none(value)
    return time.time() if stored is None else stored


#: One outcome for ``JobQueue.finish_many``: job id, delivery token (``Job.delivery_token``;
#: empty: the consumer's current delivery of the job), outcome, data (result JSON or error text)
#: and delay in ms (retry, defer). Outcomes: completed, failed, cancelled, retry, defer, requeue.
OutcomeRow = tuple[str, str, str, str, int]


class FinishResult(StrEnum):
    """What ``finish_many`` did with one outcome."""

    #: Recorded now.
    WRITTEN = "written"
    #: Recorded before under the same token (a retried write after a lost reply).
    APPLIED = "applied"
    #: Refused: the token is not the job's current delivery (cancelled or taken over).
    FENCED = "fenced"

    @property
    def recorded(self) -> bool:
        """Tell whether the outcome is the job's recorded one (written now or before)."""
        return self is not FinishResult.FENCED


class JobQueue(ABC):
    """Move jobs in and out of a store and change their status atomically.

    The first group of methods is the reference's API; the second is what the worker runtime
    (``workers.runtime``) uses: batched reads and outcomes, heartbeat, takeover and promotion;
    the third what worker kinds use besides: checkpoints of a running job and leases.
    """

    #: Settings of this queue (block time, takeover threshold, retention).
    config: QueueConfig
    #: Retry policy built from ``config`` (the worker asks it whether and when to retry).
    retry_policy: RetryPolicy
    #: Entries dead-lettered while reading (undecodable, expired, poison pills), by queue.
    dead_lettered: Counter[str]

    @abstractmethod
    async def enqueue(
        self,
        job: Job,
        priority: int = 0,
        queue_name: str | None = None,
        delay_seconds: float = 0,
    ) -> str:
        """Add a job; return its id."""

    @abstractmethod
    async def dequeue(
        self, worker_id: str, timeout_ms: int = 5000, queue_name: str | None = None
    ) -> Job | None:
        """Take the next due job and mark it processing, or return None after the timeout."""

    @abstractmethod
    async def ack(self, job_id: str) -> bool:
        """Acknowledge a dequeued job as completed without a result."""

    @abstractmethod
    async def nack(self, job_id: str, requeue: bool = True) -> bool:
        """Give a dequeued job back (requeue) or reject it as failed."""

    @abstractmethod
    async def get_status(self, job_id: str) -> Job | None:
        """Return the job as last recorded, or None when unknown or expired."""

    @abstractmethod
    async def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not finished; False when it already has."""

    @abstractmethod
    async def get_queue_stats(self, queue_name: str | None = None) -> dict[str, int]:
        """Return stream length, pending entries in the group and a count per status."""

    @abstractmethod
    async def claim_stale_jobs(
        self, idle_ms: int, queue_names: Sequence[str] | None = None, limit: int = 100
    ) -> int:
        """Take over deliveries idle longer than ``idle_ms``; return how many."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def complete(
        self, job_id: str, result: Any = None, status: JobStatus | None = None
    ) -> bool:
        """Record the end of a dequeued job (completed unless ``status`` says otherwise)."""

    @abstractmethod
    async def fail(self, job_id: str, error: str, requeue: bool = False) -> bool:
        """Record a failed run: retry later when ``requeue`` and attempts remain."""

    @abstractmethod
    def records(self) -> RecordStore:
        """Return the JSON records kept beside the jobs (webhook endpoints of library users)."""

    # -- what the worker runtime uses ---------------------------------------------------------

    @property
    @abstractmethod
    def running(self) -> Mapping[str, object]:
        """Return the deliveries this consumer started and has not finished, by job id."""

    @abstractmethod
    async def dequeue_many(
        self,
        worker_id: str,
        count: int,
        timeout_ms: int = 5000,
        queue_names: Sequence[str] | None = None,
    ) -> list[Job]:
        """Start up to ``count`` jobs from the queues; block up to ``timeout_ms`` for the first."""

    @abstractmethod
    def wake(self) -> None:
        """Make a ``dequeue_many`` waiting in this process return soon (a worker stops)."""

    @abstractmethod
    async def finish_many(self, outcomes: Sequence[OutcomeRow]) -> list[FinishResult]:
        """Record the outcomes of running jobs, each under the token of its delivery."""

    async def finish_and_take(
        self,
        outcomes: Sequence[OutcomeRow],
        worker_id: str,
        count: int,
        queue_names: Sequence[str] | None = None,
    ) -> tuple[list[FinishResult | None], list[Job]]:
        """Record ``outcomes``, then start up to ``count`` jobs without waiting for one.

        A worker calls this when jobs end and slots are free: the outcomes and the take of
        the jobs that replace them can go in one round trip. An outcome whose write was refused
        while jobs were started has None as its result: write it again (``finish_many``).
        """
        results: list[FinishResult | None] = list(await self.finish_many(outcomes))
        return results, await self.dequeue_many(worker_id, count, 0, queue_names)

    @abstractmethod
    async def set_progress(self, job_id: str, progress: Any) -> bool:
        """Record JSON ``progress`` of a running job; False when it is no longer ours."""

    @abstractmethod
    async def heartbeat(self) -> list[str]:
        """Keep running deliveries ours; return the ids of those cancelled or taken over."""

    @abstractmethod
    async def promote(self, queue_names: Sequence[str] | None = None) -> int:
        """Move due delayed and retrying jobs into their queues; return how many."""

    @abstractmethod
    async def ping(self) -> None:
        """Check that the store answers (raises ``QueueConnectionError`` when it does not)."""

    # -- what worker kinds use besides ------------------------------------------------------

    @abstractmethod
    async def save_checkpoint(
        self, job_id: str, key: str, value: Any, progress: Any = None
    ) -> bool:
        """Record JSON ``value`` under ``key`` for a running job, with its ``progress`` if given.

        Checkpoints outlive a crash of the worker, so that the next delivery skips finished
        work; they are dropped when the job completes. False when the job is no longer ours.
        """

    @abstractmethod
    async def get_checkpoints(self, job_id: str) -> dict[str, Any]:
        """Return the checkpoints of a job by key (empty when none)."""

    @abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Take lease ``name`` for ``holder`` or renew it; False while another holder has it."""

    @abstractmethod
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give lease ``name`` up if ``holder`` holds it."""
