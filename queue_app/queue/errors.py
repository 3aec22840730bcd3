"""Errors raised by the queue library: one tree rooted at ``QueueError``."""

from __future__ import annotations


class QueueError(Exception):
    """The job queue could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidJob(QueueError, ValueError):
    """The job is not valid."""


class JobNotFound(QueueError, LookupError):
    """No job with that id."""


class QueueConnectionError(QueueError, ConnectionError):
    """Redis could not be reached."""


class ConfigError(QueueError, ValueError):
    """The queue configuration is not valid."""


class RedisTooOld(ConfigError):
    """Redis 7.0 or newer is needed: the queue's scripts are Redis functions, called with FCALL."""


class UndeclaredQueue(InvalidJob):
    """That queue is not declared (``QueueConfig.queues``)."""


class QueueFull(QueueError):
    """The queue holds as many waiting jobs as its depth limit allows."""

    def __init__(self, queue: str, waiting: int, limit: int) -> None:
        super().__init__(f"queue {queue!r} is full: {waiting} jobs waiting, limit {limit}")
        #: The queue that refused the jobs.
        self.queue = queue
        #: Jobs waiting (pending, delayed, retrying) when it refused them.
        self.waiting = waiting
        #: Its depth limit.
        self.limit = limit


class EnqueueNotReplicated(QueueConnectionError):
    """Too few replicas confirmed the enqueue in time: it is not acknowledged.

    The jobs are written on the master and may still run, or be lost if the master fails
    before its replicas copy them; enqueueing them again with the same ids is safe (known ids
    are skipped). A subclass of ``QueueConnectionError``, so callers that wait out an outage
    wait this out too (REST: 503).
    """

    def __init__(self, acknowledged: int, wanted: int, wait_ms: int) -> None:
        super().__init__(
            f"enqueue not acknowledged: {acknowledged} of {wanted} replicas confirmed it "
            f"within {wait_ms} ms"
        )
        #: Replicas that confirmed the write (WAIT's reply).
        self.acknowledged = acknowledged
        #: Replicas the config asks for (``QueueConfig.enqueue_replicas``).
        self.wanted = wanted
