"""RedisStreamsTaskBackend: ``django.tasks`` ``@task`` calls become jobs on the Redis Streams queue.

A call ``add.enqueue(2, 3)`` becomes one ``Job`` of type ``django_task``: its payload holds the
task's dotted path, its JSON-normalised arguments and ``takes_context``; its metadata the backend
alias, Django's queue name and ``run_after``. Django's priority (-100..100) is the job's priority
as is; the library keeps one stream per priority in use and reads the highest first. Django's
``default`` queue runs on the Redis queue ``tasks``, any other queue name on the queue of that
name. ``manage.py queue_worker --queues tasks`` runs the jobs (``queue_app.tasks.runner``).

A ``TaskResult`` is read back from the job's status hash through ``TASK_STATUS``, the one table
from ``JobStatus`` to ``TaskResultStatus``. The library stores one error string per job, so a
failing task is raised by the worker as ``TaskFailed``, whose text (``exception_class_path:
message``, newline, traceback) this module also parses back into a ``TaskError``.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from datetime import UTC, datetime
from traceback import format_exception
from typing import Any

from django.core import checks
from django.tasks import (
    DEFAULT_TASK_QUEUE_NAME,
    Task,
    TaskResult,
    TaskResultStatus,
    task_backends,
)
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from queue_app.observability.refusals import counting_refusals
from queue_app.queue import InvalidJob, Job, JobStatus, QueueError, get_queue_config
from queue_app.queue.config import RANGES
from queue_app.queue.redis.core import check_queue_name
from queue_app.queue.retry import is_retryable_error
from queue_app.services.bridge import get_bridge

#: Most validated tasks a backend remembers (``validate_task``); past it, it starts again.
VALIDATED_MAX = 1024
#: ``Job.metadata["job_type"]`` of task jobs (the worker's handler key).
TASK_JOB_TYPE = "django_task"
#: Redis queue of Django's ``default`` task queue.
TASKS_QUEUE = "tasks"
#: Tracebacks are cut to their last this many characters before they are stored.
MAX_TRACEBACK_CHARS = 16_000
#: Keys accepted in the backend's ``OPTIONS``.
OPTION_KEYS = frozenset({"max_attempts"})

#: The one mapping of job statuses to task result statuses. Django has no "retrying" nor
#: "cancelled": a job waiting for its next attempt is READY (its ``errors`` hold the last
#: failure), and a cancelled job is FAILED with a ``TaskCancelled`` error.
TASK_STATUS: dict[JobStatus, TaskResultStatus] = {
    JobStatus.PENDING: TaskResultStatus.READY,
    JobStatus.RETRYING: TaskResultStatus.READY,
    JobStatus.PROCESSING: TaskResultStatus.RUNNING,
    JobStatus.COMPLETED: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,
}


class TaskCancelled(Exception):
    """The task's job was cancelled through the queue before it finished."""


class TaskFailed(Exception):
    """A task raised: the text is its exception's class path and message, then its traceback."""

    def __init__(self, error: BaseException) -> None:
        #: Dotted path of the exception the task raised (as ``TaskError`` names it).
        self.exception_class_path = class_path(type(error))
        self.traceback = "".join(format_exception(error))[-MAX_TRACEBACK_CHARS:]
        summary = next(iter(str(error).splitlines()), "")[:200]
        head = f"{self.exception_class_path}: {summary}" if summary else self.exception_class_path
        super().__init__(f"{head}\n{self.traceback}")


class TaskFailedPermanently(TaskFailed, ValueError):
    """A task raised an error that the library's retry policy never retries."""


#: ``<TaskFailed class>: <class path>[: message]`` then the traceback (see ``TaskFailed``).
_STORED_FAILURE = re.compile(
    r"(?:TaskFailed|TaskFailedPermanently): (?P<path>[\w.]+)(?:: [^\n]*)?\n(?P<traceback>.*)",
    re.DOTALL,
)


def class_path(cls: type) -> str:
    """Return the dotted path Django's ``TaskError`` uses for an exception class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def task_failure(error: BaseException) -> TaskFailed:
    """Wrap a task's error so that the library retries it when it would retry ``error``.

    The library also reads the wrapper's text, traceback included: a traceback that contains
    one of its permanent words (``invalid``, ``not found``, ...) makes the failure permanent.
    """
    if is_retryable_error(error):
        return TaskFailed(error)
    return TaskFailedPermanently(error)


def task_error(stored: str) -> TaskError:
    """Turn a job's stored error back into a ``TaskError``.

    Errors the worker runtime wrote itself (``TimeoutError: ...``, a dead-letter reason) keep
    their text as traceback; their class is the builtin one named, else ``QueueError``.
    """
    match = _STORED_FAILURE.fullmatch(stored)
    if match:
        return TaskError(exception_class_path=match["path"], traceback=match["traceback"])
    found = getattr(builtins, stored.partition(":")[0].strip(), None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return TaskError(exception_class_path=class_path(found), traceback=stored)
    return TaskError(exception_class_path=class_path(QueueError), traceback=stored)


# -- jobs <-> task results ------------------------------------------------------------------------


def load_task(module_path: str) -> Task:
    """Import the ``@task`` object at ``module_path``.

    Raises:
        InvalidTask: nothing importable there, or not a ``Task``.
    """
    try:
        found = import_string(module_path)
    except ImportError as error:
        raise InvalidTask(f"cannot import task {module_path!r}: {error}") from error
    if not isinstance(found, Task):
        raise InvalidTask(f"{module_path!r} is not a django.tasks Task")
    return found


def job_task(job: Job) -> Task:
    """Return the task of a task job: imported from its path, with the job's options.

    Raises:
        InvalidTask: see ``load_task``.
    """
    meta = job.metadata
    return dataclasses.replace(
        load_task(str(job.payload["module_path"])),
        priority=job.priority,
        queue_name=str(meta["queue_name"]),
        run_after=_datetime(meta.get("run_after")),
        backend=str(meta["backend"]),
    )


def task_result(job: Job, task: Task | None = None) -> TaskResult:
    """Build the ``TaskResult`` of a task job as its status hash has it.

    ``task`` is the enqueued task; without it, the task is imported from the job's path and
    given the job's priority, queue name, ``run_after`` and backend. The library keeps the
    latest attempt only: ``started_at`` and ``last_attempted_at`` are its start, ``errors``
    holds the latest error, and ``worker_ids`` has one entry per attempt, ``""`` for all but
    the latest (whose worker is known), so that ``TaskResult.attempts`` is right.
    """
    meta = job.metadata
    if task is None:
        task = job_task(job)
    status = TASK_STATUS[job.status]
    finished = status in {TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED}
    result = TaskResult(
        task=task,
        id=job.id,
        status=status,
        enqueued_at=_from_timestamp(job.created_at),
        started_at=_from_timestamp(job.started_at),
        finished_at=_from_timestamp(job.completed_at) if finished else None,
        last_attempted_at=_from_timestamp(job.started_at),
        args=job.payload["args"],
        kwargs=job.payload["kwargs"],
        backend=str(meta["backend"]),
        errors=_errors(job),
        worker_ids=_worker_ids(job),
    )
    if status is TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.result)
    return result


def _errors(job: Job) -> list[TaskError]:
    errors = [task_error(job.error)] if job.error else []
    if job.status is JobStatus.CANCELLED:
        errors.append(TaskError(exception_class_path=class_path(TaskCancelled), traceback=""))
    return errors


def _worker_ids(job: Job) -> list[str]:
    if job.attempts <= 0:
        return []
    return [""] * (job.attempts - 1) + [job.worker_id or ""]


def _from_timestamp(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _datetime(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


# -- the backend ----------------------------------------------------------------------------------


class RedisStreamsTaskBackend(BaseTaskBackend):
    """Enqueue ``@task`` calls as jobs on the Redis Streams queue and read their results back.

    ``OPTIONS``: ``max_attempts`` (1-10; default ``ARAGORA_QUEUE_RETRY_MAX``): a failing task
    runs again, with the library's backoff, while its error is retryable (``is_retryable_error``)
    and attempts remain. Results live as long as finished jobs (``ARAGORA_QUEUE_MAX_TTL_DAYS``).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    #: Exact: one stream per priority in use, read from the highest down, each first in first out.
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.max_attempts: int | None = self.options.get("max_attempts")
        #: Tasks without ``run_after`` that passed ``validate_task`` (at most VALIDATED_MAX).
        self._validated: set[Task] = set()

    def redis_queue(self, queue_name: str) -> str:
        """Return the Redis queue that runs Django's task queue ``queue_name``."""
        return TASKS_QUEUE if queue_name == DEFAULT_TASK_QUEUE_NAME else queue_name

    @property
    def redis_queues(self) -> list[str]:
        """Return the Redis queues of this backend's ``QUEUES``, sorted."""
        return sorted({self.redis_queue(name) for name in self.queues})

    def validate_task(self, task: Task) -> None:
        """Check ``task`` as Django does, then its queue name and ``run_after`` for the library.

        Every enqueue checks its task again (``Task.using`` makes variants); a task without
        ``run_after`` that passed once passes again (the checks read only the task, a frozen
        dataclass, and this backend's settings), so it is checked once.

        Raises:
            InvalidTask: the task cannot be enqueued on this backend.
        """
        if task in self._validated:
            return
        super().validate_task(task)
        try:
            check_queue_name(self.redis_queue(task.queue_name))
        except InvalidJob as error:
            raise InvalidTask(str(error)) from error
        if task.run_after is None:
            if len(self._validated) >= VALIDATED_MAX:
                self._validated.clear()
            self._validated.add(task)
            return
        if _delay_seconds(task.run_after) >= get_queue_config().job_ttl_seconds:
            raise InvalidTask(
                "run_after must be sooner than the job retention (ARAGORA_QUEUE_MAX_TTL_DAYS)"
            )

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Add a job that runs ``task(*args, **kwargs)``; return its READY result.

        Raises:
            InvalidTask: see ``validate_task``.
            TypeError, ValueError: an argument is not JSON data (as ``normalize_json`` says).
            QueueConnectionError: Redis is unreachable.
            QueueFull: the task's queue is at its depth limit (``ARAGORA_QUEUE_MAX_DEPTH``).
        """
        self.validate_task(task)
        clients = get_bridge()
        job = Job(
            payload={
                "module_path": task.module_path,
                "args": normalize_json(args),
                "kwargs": normalize_json(kwargs),
                "takes_context": task.takes_context,
            },
            max_attempts=self.max_attempts or clients.config.retry_max_attempts,
            metadata={
                "job_type": TASK_JOB_TYPE,
                "backend": self.alias,
                "queue_name": task.queue_name,
                "run_after": task.run_after.isoformat() if task.run_after else None,
            },
        )
        delay = _delay_seconds(task.run_after) if task.run_after else 0
        queue = self.redis_queue(task.queue_name)
        with counting_refusals():
            clients.enqueuer.enqueue_if_new(job, task.priority, queue, delay)
        result = task_result(job, task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """Return the result of the task job ``result_id`` as Redis has it now.

        Raises:
            TaskResultDoesNotExist: no such job, expired, or not a task job.
            QueueConnectionError: Redis is unreachable.
        """
        clients = get_bridge()
        job = clients.call(clients.tracker.get_job(result_id))
        if job is None or job.job_type != TASK_JOB_TYPE:
            raise TaskResultDoesNotExist(result_id)
        return task_result(job)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """Report bad ``OPTIONS`` and queue names the library or the workers cannot serve."""
        return [*self._check_options(), *self._check_queues()]

    def _check_options(self) -> list[checks.CheckMessage]:
        errors: list[checks.CheckMessage] = []
        unknown = sorted(set(self.options) - OPTION_KEYS)
        if unknown:
            msg = f"TASKS[{self.alias!r}]['OPTIONS'] has unknown keys: {', '.join(unknown)}"
            errors.append(checks.Error(msg, id="queue_app.tasks.E001"))
        low, high = RANGES["retry_max_attempts"]
        value = self.max_attempts
        if value is not None and (type(value) is not int or not low <= value <= high):
            msg = f"TASKS[{self.alias!r}]['OPTIONS']['max_attempts'] must be {low:g}-{high:g}"
            errors.append(checks.Error(msg, id="queue_app.tasks.E002"))
        return errors

    def _check_queues(self) -> list[checks.CheckMessage]:
        from workers import WORKER_KIND_CLASSES  # the worker kinds only matter to this check

        errors: list[checks.CheckMessage] = []
        for name in sorted(self.queues):
            queue = self.redis_queue(name)
            try:
                check_queue_name(queue)
            except InvalidJob as error:
                errors.append(checks.Error(str(error), id="queue_app.tasks.E003"))
            if queue in WORKER_KIND_CLASSES:
                msg = f"task queue {name!r} runs on {queue!r}, a queue of another worker kind"
                errors.append(checks.Error(msg, id="queue_app.tasks.E004"))
        return errors


def task_queue_names() -> list[str]:
    """Return the Redis queues of every configured ``RedisStreamsTaskBackend``, sorted."""
    names: set[str] = set()
    for backend in task_backends.all():
        if isinstance(backend, RedisStreamsTaskBackend):
            names.update(backend.redis_queues)
    return sorted(names)


def _delay_seconds(run_after: datetime) -> float:
    return max(0.0, (run_after - timezone.now()).total_seconds())
