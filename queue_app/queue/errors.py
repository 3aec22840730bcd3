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
