"""The worker kind of ``django.tasks``: ``TaskWorker`` runs the ``@task`` jobs of the backend.

``wiring`` registers ``TaskWorker`` for every Redis queue a task backend enqueues on, so that
``manage.py queue_worker --queues tasks`` runs them. Async task functions are awaited on the
worker's loop; sync ones run in the loop's thread pool (``sync_to_async(thread_sensitive=False)``),
so a slow sync task does not stall the others. A thread cannot be stopped: a sync task whose job
is cancelled keeps running until it returns, and its outcome is then discarded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from inspect import iscoroutinefunction
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.json import normalize_json

from queue_app.queue import Job, JobQueue, RetryPolicy
from queue_app.tasks.backend import (
    TASK_JOB_TYPE,
    TaskFailed,
    TaskFailedPermanently,
    task_failure,
    task_result,
)
from workers import BaseWorker, KindContext, WorkerOptions


class TaskWorker(BaseWorker):
    """Worker for the queues of ``RedisStreamsTaskBackend``: each job runs one ``@task`` call."""

    QUEUE_NAME: ClassVar[str] = "tasks"

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> TaskWorker:
        """Build the worker with the production middleware of ``context``."""
        return cls(
            queue,
            {TASK_JOB_TYPE: run_task},
            options,
            middleware=context.middleware,
            registry=context.registry,
        )


async def run_task(job: Job) -> Any:
    """Run the task of ``job`` and return its JSON-normalised return value.

    ``task_started`` and ``task_finished`` are sent around each attempt (receivers that raise
    are logged by Django and do not fail the task). After a failed attempt the result is FAILED,
    or READY when the library will run the task again.

    Raises:
        TaskFailed: the task raised; the library records the text and retries or fails the job.
        TaskFailedPermanently: the task cannot be loaded (or raised a non-retryable error).
    """
    try:
        result = task_result(job)
    except Exception as error:  # job boundary: a job whose task cannot be loaded fails for good
        raise TaskFailedPermanently(error) from error
    sender = type(result.task.get_backend())
    await sync_to_async(close_old_connections)()
    try:
        await task_started.asend_robust(sender, task_result=result)
        try:
            value = normalize_json(await _call(result))
        except Exception as error:  # job boundary: the task's own errors become its result
            failure = task_failure(error)
            _record_failure(result, failure, job)
            await task_finished.asend_robust(sender, task_result=result)
            raise failure from error
        _set(result, status=TaskResultStatus.SUCCESSFUL, finished_at=timezone.now())
        _set(result, _return_value=value)
        await task_finished.asend_robust(sender, task_result=result)
        return value
    finally:
        await sync_to_async(close_old_connections)()


async def _call(result: TaskResult) -> Any:
    """Call the task function with the result's arguments (and its context first, if asked)."""
    task = result.task
    args = list(result.args)
    if task.takes_context:
        args.insert(0, TaskContext(task_result=result))
    if iscoroutinefunction(task.func):
        return await task.func(*args, **result.kwargs)
    call = sync_to_async(_call_in_thread, thread_sensitive=False)
    return await call(task.func, args, result.kwargs)


def _call_in_thread(
    func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Any:
    """Run a sync task function with fresh database connections in its pool thread."""
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


def _record_failure(result: TaskResult, failure: TaskFailed, job: Job) -> None:
    """Add the attempt's error; the result stays READY when the library will retry the job."""
    error = TaskError(
        exception_class_path=failure.exception_class_path, traceback=failure.traceback
    )
    retried = RetryPolicy(max_attempts=job.max_attempts).should_retry(job.attempts, failure)
    if retried:
        _set(result, status=TaskResultStatus.READY, errors=[error])
    else:
        _set(result, status=TaskResultStatus.FAILED, errors=[error], finished_at=timezone.now())


def _set(result: TaskResult, **changes: Any) -> None:
    """Change fields of a (frozen) ``TaskResult`` in place, as Django's own backends do."""
    for name, value in changes.items():
        object.__setattr__(result, name, value)
