"""The worker kind of ``django.tasks``: ``TaskWorker`` runs the ``@task`` jobs of the backend.

``wiring`` registers ``TaskWorker`` for every Redis queue a task backend enqueues on, so that
``manage.py queue_worker --queues tasks`` runs them. Async task functions are awaited on the
worker's loop; sync ones run in the loop's thread pool (``sync_to_async(thread_sensitive=False)``),
so a slow sync task does not stall the others. A thread cannot be stopped: a sync task whose job
is cancelled keeps running until it returns, and its outcome is then discarded.

The per-task path makes no thread hop of its own. A sync task drops stale database connections
in its pool thread, before and after it runs. Async tasks (and sync signal receivers) reach the
database through asgiref's one shared sync thread, whose stale connections ``ConnectionSweeper``
closes after tasks finish: one hop for all the tasks that finished meanwhile (at most one every
``SWEEP_INTERVAL_SECONDS``), not two per task.
``task_started`` and ``task_finished`` are sent when they have receivers; Django's own receivers
log every task at INFO, so the worker replaces them with the same lines at DEBUG (a failure at
ERROR), as the project logs starts and completions. A task's ``TaskResult`` is built only when
something reads it: the task's context, a signal receiver, DEBUG logs, or a failure's log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from inspect import iscoroutinefunction
from typing import Any, ClassVar, NamedTuple

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.dispatch import Signal
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus, signals
from django.tasks.base import TaskError
from django.utils import timezone
from django.utils.json import normalize_json

from queue_app.queue import Job, JobQueue, RetryPolicy
from queue_app.tasks.backend import (
    TASK_JOB_TYPE,
    TaskFailed,
    TaskFailedPermanently,
    job_task,
    task_failure,
    task_result,
)
from workers import BaseWorker, KindContext, WorkerOptions

#: Django's logger of task transitions (its receivers log there; so does the worker instead).
task_logger = logging.getLogger("django.tasks")
#: Loaded tasks kept per runner, by path and the options a job sets (cleared when full).
MAX_CACHED_TASKS = 256
#: Shortest time between two sweeps: a hop to the sync thread costs ~100 µs of CPU, so under
#: load the tasks finishing within this time share one sweep instead of one each.
SWEEP_INTERVAL_SECONDS = 0.1


class TaskWorker(BaseWorker):
    """Worker for the queues of ``RedisStreamsTaskBackend``: each job runs one ``@task`` call."""

    QUEUE_NAME: ClassVar[str] = "tasks"
    #: Jobs at once without ``--concurrency`` (README): tasks mostly wait on I/O.
    DEFAULT_CONCURRENCY: ClassVar[int] = 50

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> TaskWorker:
        """Build the worker with the production middleware of ``context``."""
        quiet_django_task_logging()
        runner = TaskRunner()
        return cls(
            queue,
            {TASK_JOB_TYPE: runner},
            options,
            middleware=context.middleware,
            registry=context.registry,
            closers=[runner.close],
        )


def quiet_django_task_logging() -> None:
    """Disconnect Django's receivers that log each task start and finish at INFO."""
    signals.task_started.disconnect(signals.log_task_started)
    signals.task_finished.disconnect(signals.log_task_finished)


class ConnectionSweeper:
    """Close stale connections of asgiref's shared sync thread, one hop per burst of tasks.

    A request after a quiet spell sweeps at once; requests made during a sweep or within
    ``interval`` seconds after it are served by one sweep at the end of that interval.
    """

    def __init__(self, interval: float = SWEEP_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._due = False
        self._sweeping: asyncio.Task[None] | None = None

    def request(self) -> None:
        """Ask for a sweep once the one in progress (if any) is done."""
        self._due = True
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        while self._due:
            self._due = False
            await sync_to_async(close_old_connections)()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """Sweep once more if a request waits, then stop."""
        if self._sweeping is not None:
            self._sweeping.cancel()
            await asyncio.gather(self._sweeping, return_exceptions=True)
        if self._due:
            self._due = False
            await sync_to_async(close_old_connections)()


class TaskRunner:
    """The handler of task jobs: run the job's task and return its JSON-normalised value."""

    def __init__(self) -> None:
        self.sweeper = ConnectionSweeper()
        self._tasks: dict[tuple[Any, ...], LoadedTask] = {}

    async def __call__(self, job: Job) -> Any:
        """Run the task of ``job``; a job whose task cannot be loaded fails for good.

        Raises:
            TaskFailed: the task raised; the library records the text and retries or fails the job.
            TaskFailedPermanently: the task cannot be loaded (or raised a non-retryable error).
        """
        try:
            loaded = self._task_of(job)
            args, kwargs = list(job.payload["args"]), job.payload["kwargs"]
            result = task_result(job, loaded.task) if _observed(loaded) else None
        except Exception as error:  # job boundary: a job whose task cannot be loaded fails for good
            raise TaskFailedPermanently(error) from error
        try:
            if result is not None:
                return await run_task(job, result, loaded)
            return await run_unobserved(job, loaded, args, kwargs)
        finally:
            self.sweeper.request()

    def _task_of(self, job: Job) -> LoadedTask:
        """Return the job's task with the job's options (imported and checked once per runner)."""
        meta = job.metadata
        key = (job.payload.get("module_path"), job.priority, meta.get("queue_name"))
        key += (meta.get("run_after"), meta.get("backend"))
        loaded = self._tasks.get(key)
        if loaded is None:
            if len(self._tasks) >= MAX_CACHED_TASKS:
                self._tasks.clear()
            loaded = self._tasks[key] = LoadedTask.of(job_task(job))
        return loaded

    async def close(self) -> None:
        """Wait for the last connection sweep."""
        await self.sweeper.close()


class LoadedTask(NamedTuple):
    """A job's task, loaded once per runner, with what each run of it needs."""

    task: Task
    #: Sender of ``task_started`` and ``task_finished``: the class of the task's backend.
    sender: type
    #: Whether the task function is a coroutine function (awaited on the loop).
    is_async: bool

    @classmethod
    def of(cls, task: Task) -> LoadedTask:
        """Return ``task`` with its signal sender and kind."""
        return cls(task, type(task.get_backend()), iscoroutinefunction(task.func))


def _observed(loaded: LoadedTask) -> bool:
    """Tell whether a run of ``loaded`` needs its ``TaskResult`` from the start: the task takes
    its context, a receiver listens to ``task_started``/``task_finished``, or DEBUG logs show."""
    if loaded.task.takes_context or task_logger.isEnabledFor(logging.DEBUG):
        return True
    return bool(signals.task_started.receivers or signals.task_finished.receivers)


async def run_unobserved(
    job: Job, loaded: LoadedTask, args: list[Any], kwargs: Mapping[str, Any]
) -> Any:
    """Run the task of ``job`` that nothing observes (``_observed``); return its JSON value.

    No ``TaskResult`` is built unless the task fails, or a ``task_finished`` receiver was
    connected while it ran: the end is then logged and signalled as ``run_task`` does.
    """
    try:
        value = normalize_json(await _call(loaded, args, kwargs))
    except Exception as error:  # job boundary: the task's own errors become its result
        failure = task_failure(error)
        await _failed(job, task_result(job, loaded.task), loaded, failure, error)
        raise failure from error
    if signals.task_finished.receivers:  # connected since the start (the task's own code...)
        result = task_result(job, loaded.task)
        _succeeded(result, value)
        await _send(signals.task_finished, loaded.sender, result)
    return value


async def run_task(job: Job, result: TaskResult, loaded: LoadedTask) -> Any:
    """Run the task of ``result`` (of ``job``) and return its JSON-normalised return value.

    ``task_started`` and ``task_finished`` are sent around each attempt (receivers that raise
    are logged by Django and do not fail the task). After a failed attempt the result is FAILED,
    or READY when the library will run the task again.
    """
    sender = loaded.sender  # loaded once per task: Django looks the backend up on each call
    await _send(signals.task_started, sender, result)
    args = list(result.args)
    if loaded.task.takes_context:
        args.insert(0, TaskContext(task_result=result))
    try:
        value = normalize_json(await _call(loaded, args, result.kwargs))
    except Exception as error:  # job boundary: the task's own errors become its result
        failure = task_failure(error)
        await _failed(job, result, loaded, failure, error)
        raise failure from error
    _succeeded(result, value)
    await _send(signals.task_finished, sender, result)
    return value


async def _failed(
    job: Job, result: TaskResult, loaded: LoadedTask, failure: TaskFailed, error: Exception
) -> None:
    """Record the failed attempt in ``result``, log it and send ``task_finished``."""
    _record_failure(result, failure, job)
    await _send(signals.task_finished, loaded.sender, result, error)


async def _send(
    signal: Signal, sender: type, result: TaskResult, error: BaseException | None = None
) -> None:
    """Log the transition as Django does (DEBUG; a failure at ERROR), then send ``signal``."""
    failed = result.status is TaskResultStatus.FAILED
    level = logging.ERROR if failed else logging.DEBUG
    if task_logger.isEnabledFor(level):
        path, status = result.task.module_path, result.status
        args = (result.id, path, status)
        task_logger.log(level, "Task id=%s path=%s state=%s", *args, exc_info=error)
    if signal.receivers and signal.has_listeners(sender):  # most workers connect none
        await signal.asend_robust(sender, task_result=result)


async def _call(loaded: LoadedTask, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Call the task function with ``args`` and ``kwargs`` (a sync one in a pool thread)."""
    func = loaded.task.func
    if loaded.is_async:
        return await func(*args, **kwargs)
    call = sync_to_async(_call_in_thread, thread_sensitive=False)
    return await call(func, args, kwargs)


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


def _succeeded(result: TaskResult, value: Any) -> None:
    """Mark ``result`` successful now, with the task's JSON-normalised ``value``."""
    finished = timezone.now()
    _set(result, status=TaskResultStatus.SUCCESSFUL, finished_at=finished, _return_value=value)


def _set(result: TaskResult, **changes: Any) -> None:
    """Change fields of a (frozen) ``TaskResult`` in place, as Django's own backends do."""
    for name, value in changes.items():
        object.__setattr__(result, name, value)
