"""The enqueue step that ``RedisStreamsQueue`` and ``SyncEnqueuer`` share: rows, batches, replies.

A job becomes one row of the enqueue script (``lua/enqueue.lua``); a call's arguments are its rows'
fields, one argument each. Everything here is pure: the callers own the Redis client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from ..base import Job, JobStatus, scope_tags
from ..config import QueueConfig
from ..errors import InvalidJob, QueueFull
from ..tracing import current_trace_carrier, inject_into_jobs
from .core import QueueCore, compact_json, dumps, to_delay_ms
from .keys import PRIORITY_RANGE, Keys
from .scripts import Call

#: Jobs per enqueue script call when a batch without a depth limit is split.
ENQUEUE_CHUNK = 500

#: Compact JSON of script arguments: the finish rows (one argument instead of one per field), a
#: job's scope tags.
encode_json = compact_json(ensure_ascii=False)


def job_rows(
    jobs: Sequence[Job],
    queue: str,
    priority: int,
    delay_seconds: float | Sequence[float],
    config: QueueConfig,
    trace_jobs: bool,
) -> list[list[Any]]:
    """Check ``jobs`` and their delay, mark them pending on ``queue``, and return their rows.

    ``delay_seconds`` is one delay for all jobs or one per job. With ``trace_jobs``, jobs
    without a trace context get the current span's (read once).

    Raises:
        InvalidJob: a bad payload, priority, attempt count or delay.
    """
    if isinstance(delay_seconds, int | float):
        delays = [_delay_ms(delay_seconds, config)] * len(jobs)
    else:
        delays = [_delay_ms(delay, config) for delay in delay_seconds]
    if trace_jobs:
        inject_into_jobs(jobs, current_trace_carrier())
    return [_row(job, queue, priority, delay) for job, delay in zip(jobs, delays, strict=True)]


def _delay_ms(delay_seconds: float, config: QueueConfig) -> int:
    delay_ms = to_delay_ms(delay_seconds)
    if delay_ms and delay_ms >= config.job_ttl_seconds * 1000:
        raise InvalidJob("delay_seconds must be shorter than the job retention (max_job_ttl_days)")
    return delay_ms


def _row(job: Job, queue: str, priority: int, delay_ms: int) -> list[Any]:
    if not isinstance(job.payload, dict):
        raise InvalidJob("payload must be a dict")
    job.priority = checked_priority(priority or job.priority)
    if job.max_attempts < 1:
        raise InvalidJob("max_attempts must be at least 1")
    job.queue = queue
    job.status = JobStatus.PENDING
    return [  # numbers the script writes as they are go as strings (Lua formats numbers slowly)
        job.id,
        str(job.priority),
        delay_ms,
        str(job.max_attempts),
        repr(float(job.created_at)),
        dumps(job.payload, "payload"),
        dumps(job.metadata, "metadata"),
        scope_tags(job.metadata),
    ]


def batches(rows: list[list[Any]], limit: int | None, whole: bool = False) -> list[list[list[Any]]]:
    """Return the parts of ``rows`` that one script call each adds.

    Under a depth limit (or ``whole``) one call adds the whole batch, or none of it under the
    limit; otherwise rows go 500 per call.
    """
    if whole or limit is not None or len(rows) <= ENQUEUE_CHUNK:
        return [rows]
    return [rows[i : i + ENQUEUE_CHUNK] for i in range(0, len(rows), ENQUEUE_CHUNK)]


def enqueue_call(
    core: QueueCore, queue: str, rows: list[list[Any]], limit: int | None, all_new: bool = False
) -> Call:
    """Return the KEYS and ARGV of the enqueue script call that adds ``rows`` to ``queue``.

    With ``all_new`` the call adds no row when any row's id is already known. The scope tags of
    a row go as one JSON array, or ``""`` when it has none.
    """
    args: list[Any] = [limit_arg(limit), "1" if all_new else "0"]
    for row in rows:
        args.extend(row[:7])
        args.append(encode_json(row[7]) if row[7] else "")
    return core.script_call("enqueue", queue, args, enqueue_keys(core.keys, queue, rows))


def enqueue_keys(keys: Keys, queue: str, rows: list[list[Any]]) -> list[str]:
    """Return the per-job keys of enqueue.lua: job hashes, scope indexes, other streams."""
    jobs = keys.jobs(queue, [row[0] for row in rows])
    scopes = {keys.scope(queue, tag): None for row in rows for tag in row[7]}
    streams = {keys.stream(queue, int(row[1])): None for row in rows if row[1] != "0"}
    return [*jobs, *scopes, *streams]


def limit_arg(limit: int | None) -> int:
    """Return the script's depth-limit argument (-1: no limit)."""
    return -1 if limit is None else limit


def refusal(queue: str, error: ResponseError) -> QueueFull | None:
    """Return ``QueueFull`` when ``error`` is the enqueue script's refusal, else None."""
    words = str(error).split()
    if len(words) == 3 and words[0] == "QUEUEFULL":
        return QueueFull(queue, int(words[1]), int(words[2]))
    return None


def checked_priority(priority: Any) -> int:
    """Return ``priority`` if it is an integer in ``PRIORITY_RANGE``, else raise ``InvalidJob``."""
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise InvalidJob(f"priority must be an integer from {low} to {high}, got {priority!r}")
    return priority
