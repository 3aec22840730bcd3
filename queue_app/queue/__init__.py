"""Redis Streams job queue library (public API of the reference ``aragora.queue``)."""

from __future__ import annotations

from .base import FinishResult, Job, JobQueue, JobStatus, OutcomeRow, scope_tags
from .config import QueueConfig, get_queue_config, reset_queue_config, set_queue_config
from .errors import (
    ConfigError,
    EnqueueNotReplicated,
    InvalidJob,
    JobNotFound,
    QueueConnectionError,
    QueueError,
    QueueFull,
    RedisTooOld,
    UndeclaredQueue,
)
from .origin import DebateOrigin
from .payloads import DebateJobPayload, DebateResult, create_debate_job, get_debate_payload
from .records import RecordStore
from .redis import JobStatusTracker, RedisStreamsQueue, create_redis_queue
from .retry import RetryPolicy, is_retryable_error
from .tracing import inject_trace_context, traced_job

__all__ = [
    "ConfigError",
    "DebateJobPayload",
    "DebateOrigin",
    "DebateResult",
    "EnqueueNotReplicated",
    "FinishResult",
    "InvalidJob",
    "Job",
    "JobNotFound",
    "JobQueue",
    "JobStatus",
    "JobStatusTracker",
    "OutcomeRow",
    "QueueConfig",
    "QueueConnectionError",
    "QueueError",
    "QueueFull",
    "RecordStore",
    "RedisStreamsQueue",
    "RedisTooOld",
    "RetryPolicy",
    "UndeclaredQueue",
    "create_debate_job",
    "create_redis_queue",
    "get_debate_payload",
    "get_queue_config",
    "inject_trace_context",
    "is_retryable_error",
    "reset_queue_config",
    "scope_tags",
    "set_queue_config",
    "traced_job",
]
