"""The django.tasks backend on a real redis-server: job shape, results, defer, priority, runs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.core import checks
from django.tasks import TaskResult, TaskResultStatus, task, task_backends
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils import timezone

from queue_app import wiring
from queue_app.management.commands.queue_worker import WORKER_CHECK_TAGS
from queue_app.queue import Job, JobStatus, QueueConfig, QueueError, RetryPolicy
from queue_app.tasks import backend as backend_module
from queue_app.tasks import runner
from queue_app.tasks.backend import (
    TASK_STATUS,
    RedisStreamsTaskBackend,
    TaskCancelled,
    TaskFailed,
    task_error,
    task_failure,
)
from queue_app.tasks.examples import (
    add,
    describe_attempt,
    divide,
    greet,
    require_positive,
)
from queue_app.tasks.runner import ConnectionSweeper, TaskWorker
from tests.integration.conftest import QueueFactory
from workers import (
    BaseWorker,
    DiagnosticsWorker,
    KindContext,
    LoggingMiddleware,
    MiddlewareChain,
    TracingMiddleware,
    WorkerOptions,
)
from workers.metrics import MetricsMiddleware
from workers.routing import OriginRoutingMiddleware

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

#: The worker closes old database connections after tasks, so tests may touch the database.
pytestmark = pytest.mark.django_db

BACKEND = "queue_app.tasks.backend.RedisStreamsTaskBackend"
PREFIX = "aragora:queue:"
FAST_RETRY = RetryPolicy(base_delay_seconds=0.05, max_delay_seconds=0.2, jitter=False)


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    """Return a plain client of the private Redis to assert on keys."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


@pytest.fixture
def tasks_settings(settings: SettingsWrapper) -> Callable[..., None]:
    """Return a function that replaces the default task backend's QUEUES and OPTIONS."""

    def configure(queues: list[str] | None = None, **options: Any) -> None:
        settings.TASKS = {
            "default": {"BACKEND": BACKEND, "QUEUES": queues or ["default"], "OPTIONS": options}
        }

    return configure


async def run_worker(make_queue: QueueFactory, *queues: str, concurrency: int = 4) -> BaseWorker:
    """Run a burst worker with the tasks kind on ``queues`` (``tasks`` by default)."""
    queue = await make_queue("w-test")
    options = WorkerOptions(
        worker_id="w-test", queues=queues or ("tasks",), max_concurrent=concurrency, burst=True
    )
    context = KindContext(middleware=MiddlewareChain(wiring.worker_middleware()))
    worker = await TaskWorker.build(queue, options, context)
    await asyncio.wait_for(worker.start(), 20)
    return worker


def failure_text(error: Exception) -> str:
    """Return the error string the worker runtime stores for a task that raised ``error``."""
    try:
        raise error
    except Exception as raised:
        failure = task_failure(raised)
    return f"{type(failure).__name__}: {failure}"


# -- the backend and its table ------------------------------------------------------------------


def test_backend_supports_defer_priority_async_and_results() -> None:
    backend = task_backends["default"]
    assert isinstance(backend, RedisStreamsTaskBackend)
    assert backend.supports_defer and backend.supports_priority
    assert backend.supports_async_task and backend.supports_get_result
    assert set(TASK_STATUS) == set(JobStatus)


def test_enqueue_writes_a_task_job(store: redis.Redis) -> None:
    result = describe_attempt.enqueue(note="hi")
    assert result.status is TaskResultStatus.READY and result.backend == "default"
    assert result.kwargs == {"note": "hi"} and result.args == [] and result.errors == []
    assert result.enqueued_at is not None and timezone.is_aware(result.enqueued_at)
    data = store.hgetall(f"{PREFIX}job:{result.id}")
    assert (data["status"], data["queue"], data["priority"]) == ("pending", "tasks", "0")
    assert data["max_attempts"] == "3"
    assert json.loads(data["payload"]) == {
        "module_path": "queue_app.tasks.examples.describe_attempt",
        "args": [],
        "kwargs": {"note": "hi"},
        "takes_context": True,
    }
    metadata = json.loads(data["metadata"])
    assert metadata["job_type"] == "django_task" and metadata["backend"] == "default"
    assert metadata["queue_name"] == "default" and metadata["run_after"] is None
    assert store.xlen(f"{PREFIX}tasks:stream") == 1


def test_enqueue_normalises_arguments_and_refuses_what_json_cannot_hold(
    store: redis.Redis,
) -> None:
    result = add.enqueue((1, 2), b=b"3")
    assert result.args == [[1, 2]] and result.kwargs == {"b": "3"}
    assert json.loads(store.hget(f"{PREFIX}job:{result.id}", "payload"))["args"] == [[1, 2]]
    with pytest.raises(TypeError, match="Unsupported type"):
        add.enqueue(object(), 1)
    assert store.xlen(f"{PREFIX}tasks:stream") == 1


def test_max_attempts_option_sets_the_jobs_attempts(
    tasks_settings: Callable[..., None], store: redis.Redis
) -> None:
    tasks_settings(max_attempts=5)
    result = add.enqueue(1, 1)
    assert store.hget(f"{PREFIX}job:{result.id}", "max_attempts") == "5"


def test_other_queue_names_run_on_their_own_redis_queue(
    tasks_settings: Callable[..., None], store: redis.Redis
) -> None:
    tasks_settings(["default", "emails"])
    result = add.using(queue_name="emails").enqueue(1, 1)
    assert store.hget(f"{PREFIX}job:{result.id}", "queue") == "emails"
    assert store.xlen(f"{PREFIX}emails:stream") == 1
    assert add.get_result(result.id).task.queue_name == "emails"
    kinds = wiring.worker_kinds()
    assert kinds["tasks"] is TaskWorker and kinds["emails"] is TaskWorker


# -- validation and checks ----------------------------------------------------------------------


def local_function_task() -> None:
    def inner() -> None:
        pass

    task(inner)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: add.using(queue_name="other"), "Queue 'other' is not valid"),
        (lambda: add.using(priority=101), "priority must be a whole number"),
        (lambda: add.using(run_after=timezone.now() + timedelta(days=8)), "job retention"),
        (lambda: add.using(run_after=timezone.now().replace(tzinfo=None)), "aware datetime"),
        (local_function_task, "module level"),
    ],
    ids=["queue-not-listed", "priority", "run-after-past-retention", "naive-run-after", "local"],
)
def test_validate_task_refuses_what_the_backend_cannot_run(
    make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(InvalidTask, match=message):
        make()


def test_validate_task_refuses_queue_names_redis_cannot_hold(
    tasks_settings: Callable[..., None],
) -> None:
    tasks_settings(["default", "bad name"])
    with pytest.raises(InvalidTask, match="invalid queue name 'bad name'"):
        add.using(queue_name="bad name")


def test_a_task_checked_once_is_not_checked_again_and_its_variants_still_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = task_backends["default"]
    assert isinstance(backend, RedisStreamsTaskBackend)
    checked: list[Any] = []
    django_check = BaseTaskBackend.validate_task

    def counting(self: BaseTaskBackend, task: Any) -> None:
        checked.append(task)
        django_check(self, task)

    monkeypatch.setattr(BaseTaskBackend, "validate_task", counting)
    backend._validated.clear()
    for _ in range(3):
        backend.validate_task(add)
    assert checked == [add]  # checked once: the same frozen task passes as before
    backend.validate_task(add.using(priority=5))
    assert len(checked) == 2  # a variant is another task: checked
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        backend.validate_task(add.using(priority=101))
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        backend.validate_task(add.using(priority=101))  # a refused task is not remembered
    monkeypatch.setattr(backend_module, "VALIDATED_MAX", 3)
    for priority in range(10):
        backend.validate_task(add.using(priority=priority))
        assert len(backend._validated) <= 3  # bounded: variants without end cost no memory


def test_check_reports_bad_options_and_queues(tasks_settings: Callable[..., None]) -> None:
    tasks_settings(["default", "bad name", "debates"], max_attempts=0, colour="blue")
    ids = [message.id for message in task_backends["default"].check()]
    assert ids == [
        "queue_app.tasks.E001",
        "queue_app.tasks.E002",
        "queue_app.tasks.E003",
        "queue_app.tasks.E004",
    ]
    tasks_settings(["default", "emails"], max_attempts=10)
    assert task_backends["default"].check() == []


def test_queue_worker_start_up_checks_include_the_task_backends(
    tasks_settings: Callable[..., None],
) -> None:
    tasks_settings(["default"], max_attempts=0)
    ids = [message.id for message in checks.run_checks(tags=WORKER_CHECK_TAGS)]
    assert "queue_app.tasks.E002" in ids  # max_attempts out of range
    assert checks.Tags.urls not in WORKER_CHECK_TAGS


# -- results read back from the status hash ---------------------------------------------------


async def test_get_result_maps_each_job_status(make_queue: QueueFactory) -> None:
    queue = await make_queue("w-1")
    result = add.enqueue(1, 2)
    assert result.id == add.get_result(result.id).id
    job = await queue.dequeue("w-1", 1000, "tasks")
    assert job is not None and job.id == result.id
    running = add.get_result(result.id)
    assert running.status is TaskResultStatus.RUNNING and running.worker_ids == ["w-1"]
    assert running.started_at is not None and running.last_attempted_at == running.started_at
    assert running.finished_at is None and running.attempts == 1
    await queue.retry(job.id, failure_text(ZeroDivisionError("division by zero")), 0)
    retrying = add.get_result(result.id)
    assert retrying.status is TaskResultStatus.READY and not retrying.is_finished
    assert [e.exception_class for e in retrying.errors] == [ZeroDivisionError]
    assert await queue.promote(["tasks"]) == 1
    assert await queue.dequeue("w-2", 1000, "tasks") is not None
    assert add.get_result(result.id).worker_ids == ["", "w-2"]
    assert await queue.complete(job.id, 3)
    done = add.get_result(result.id)
    assert done.status is TaskResultStatus.SUCCESSFUL and done.return_value == 3
    assert done.errors == [] and done.attempts == 2 and done.finished_at is not None


async def test_get_result_reports_failures_and_cancels_as_failed(make_queue: QueueFactory) -> None:
    queue = await make_queue("w-1")
    failing, cancelled = require_positive.enqueue(-1), require_positive.enqueue(-2)
    job = await queue.dequeue("w-1", 1000, "tasks")
    assert job is not None and job.id == failing.id
    await queue.fail(job.id, failure_text(ValueError("-1 is not positive")))
    failed = require_positive.get_result(failing.id)
    assert failed.status is TaskResultStatus.FAILED and failed.finished_at is not None
    (error,) = failed.errors
    assert (
        error.exception_class is ValueError and "ValueError: -1 is not positive" in error.traceback
    )
    with pytest.raises(ValueError, match="Task failed"):
        _ = failed.return_value
    assert await queue.cancel(cancelled.id)
    result = require_positive.get_result(cancelled.id)
    assert result.status is TaskResultStatus.FAILED
    assert [e.exception_class for e in result.errors] == [TaskCancelled]


def test_task_error_keeps_errors_the_runtime_wrote_itself() -> None:
    timeout = task_error("TimeoutError: ")
    assert timeout.exception_class is TimeoutError and timeout.traceback == "TimeoutError: "
    dead = task_error("delivered more than max_attempts times")
    assert dead.exception_class is QueueError
    assert issubclass(type(task_failure(ValueError("x"))), ValueError)
    assert not issubclass(type(task_failure(ZeroDivisionError("x"))), ValueError)


async def test_get_result_refuses_unknown_ids_other_jobs_and_other_tasks(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    other = await queue.enqueue(Job(payload={}, metadata={"job_type": "noop"}), 0, "diagnostics")
    for result_id in ("no-such-id", other):
        with pytest.raises(TaskResultDoesNotExist):
            task_backends["default"].get_result(result_id)
    result = add.enqueue(1, 1)
    with pytest.raises(TaskResultMismatch):
        greet.get_result(result.id)


async def test_aenqueue_and_aget_result() -> None:
    result = await greet.aenqueue("Ada")
    fetched = await greet.aget_result(result.id)
    assert fetched.status is TaskResultStatus.READY and fetched.args == ["Ada"]
    await fetched.arefresh()
    assert fetched.task.func is greet.func


# -- runs by a worker -------------------------------------------------------------------------


async def test_worker_runs_sync_async_and_context_tasks(
    make_queue: QueueFactory, store: redis.Redis
) -> None:
    summed, greeted = add.enqueue(2, 3), greet.enqueue("Ada", delay=0.01)
    described, failing = describe_attempt.enqueue(note="n"), require_positive.enqueue(-1)
    worker = await run_worker(make_queue)
    assert worker.get_stats()["jobs_processed"] == 3 and worker.get_stats()["jobs_failed"] == 1
    assert add.get_result(summed.id).return_value == 5
    assert greet.get_result(greeted.id).return_value == "Hello, Ada!"
    context = describe_attempt.get_result(described.id)
    assert context.return_value == {"id": described.id, "attempt": 1, "note": "n"}
    assert context.worker_ids == ["w-test"] and context.finished_at is not None
    failed = require_positive.get_result(failing.id)
    assert failed.status is TaskResultStatus.FAILED and failed.attempts == 1
    (error,) = failed.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert "ValueError: -1 is not positive" in error.traceback and 'File "' in error.traceback
    assert store.xpending(f"{PREFIX}tasks:stream", "debate-workers")["pending"] == 0


async def test_retryable_failures_run_again_until_attempts_run_out(
    make_queue: QueueFactory, tasks_settings: Callable[..., None]
) -> None:
    tasks_settings(max_attempts=2)
    result = divide.enqueue(1, 0)
    finished: list[tuple[str, int]] = []

    def on_finished(sender: type, task_result: Any, **kwargs: Any) -> None:
        finished.append((task_result.status, len(task_result.errors)))

    task_finished.connect(on_finished)
    try:
        await run_worker(make_queue)
    finally:
        task_finished.disconnect(on_finished)
    assert finished == [(TaskResultStatus.READY, 1), (TaskResultStatus.FAILED, 1)]
    failed = divide.get_result(result.id)
    assert failed.status is TaskResultStatus.FAILED and failed.worker_ids == ["", "w-test"]
    assert [e.exception_class for e in failed.errors] == [ZeroDivisionError]


async def test_worker_fails_jobs_whose_task_cannot_be_loaded(make_queue: QueueFactory) -> None:
    queue = await make_queue()
    job = Job(
        payload={"module_path": "queue_app.tasks.examples.missing", "args": [], "kwargs": {}},
        metadata={"job_type": "django_task", "backend": "default", "queue_name": "default"},
    )
    await queue.enqueue(job, 0, "tasks")
    await run_worker(make_queue)
    stored = await queue.get_status(job.id)
    assert stored is not None and stored.status is JobStatus.FAILED and stored.attempts == 1
    assert stored.error is not None
    assert stored.error.startswith("TaskFailedPermanently: django.tasks.exceptions.InvalidTask")


async def test_run_after_defers_the_job(make_queue: QueueFactory, store: redis.Redis) -> None:
    run_after = timezone.now() + timedelta(seconds=1.5)
    result = add.using(run_after=run_after).enqueue(1, 1)
    due_ms = store.zscore(f"{PREFIX}tasks:delayed", result.id)
    assert due_ms is not None and abs(due_ms / 1000 - run_after.timestamp()) < 0.5
    assert store.xlen(f"{PREFIX}tasks:stream") == 0
    waiting = add.get_result(result.id)
    assert waiting.status is TaskResultStatus.READY and waiting.task.run_after == run_after
    await run_worker(make_queue)
    done = add.get_result(result.id)
    assert done.status is TaskResultStatus.SUCCESSFUL and done.started_at is not None
    assert done.started_at >= run_after - timedelta(seconds=0.1)


async def test_higher_priority_tasks_start_before_the_backlog(make_queue: QueueFactory) -> None:
    low = add.using(priority=-10).enqueue(0, 0)
    backlog = [add.enqueue(i, i) for i in range(5)]
    urgent = add.using(priority=50).enqueue(1, 1)
    assert urgent.task.priority == 50
    await run_worker(make_queue, concurrency=1)
    started = {r.id: add.get_result(r.id).started_at for r in [low, *backlog, urgent]}
    order = sorted(started, key=lambda result_id: started[result_id])
    assert order == [urgent.id, *(r.id for r in backlog), low.id]
    assert add.get_result(urgent.id).task.priority == 50


async def test_signals_fire_on_enqueue_start_and_finish(make_queue: QueueFactory) -> None:
    seen: list[tuple[str, type, str, str]] = []

    def receiver(signal: Any, sender: type, task_result: Any, **kwargs: Any) -> None:
        name = {task_enqueued: "enqueued", task_started: "started", task_finished: "finished"}
        seen.append((name[signal], sender, task_result.id, task_result.status))

    for signal in (task_enqueued, task_started, task_finished):
        signal.connect(receiver)
    try:
        result = add.enqueue(2, 2)
        await run_worker(make_queue)
    finally:
        for signal in (task_enqueued, task_started, task_finished):
            signal.disconnect(receiver)
    sender = RedisStreamsTaskBackend
    assert seen == [
        ("enqueued", sender, result.id, TaskResultStatus.READY),
        ("started", sender, result.id, TaskResultStatus.RUNNING),
        ("finished", sender, result.id, TaskResultStatus.SUCCESSFUL),
    ]


#: What a receiver that ``connects_a_receiver`` connects while it runs has seen.
late_finishes: list[tuple[str, str, Any]] = []


def late_receiver(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
    """Record a ``task_finished`` (connected by a running task)."""
    late_finishes.append((task_result.id, task_result.status, task_result.return_value))


@task()
async def connects_a_receiver() -> str:
    """Connect ``late_receiver`` to ``task_finished`` while running (none was at the start)."""
    task_finished.connect(late_receiver)
    return "done"


async def test_a_receiver_connected_while_a_task_runs_gets_its_finish(
    make_queue: QueueFactory,
) -> None:
    late_finishes.clear()
    result = connects_a_receiver.enqueue()
    try:
        await run_worker(make_queue)
    finally:
        task_finished.disconnect(late_receiver)
    assert late_finishes == [(result.id, TaskResultStatus.SUCCESSFUL, "done")]


async def run_logged(
    make_queue: QueueFactory, caplog: pytest.LogCaptureFixture, level: int
) -> tuple[TaskResult, TaskResult, list[tuple[int, str]]]:
    """Run a passing and a failing task with ``django.tasks`` logs at ``level``; return their
    results and the log lines (level, message)."""
    caplog.set_level(level, logger="django.tasks")
    done, failing = add.enqueue(1, 2), require_positive.enqueue(-1)
    await run_worker(make_queue)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "django.tasks"]
    return done, failing, lines


async def test_task_transitions_log_at_debug_and_failures_at_error(
    make_queue: QueueFactory, caplog: pytest.LogCaptureFixture
) -> None:
    done, failing, lines = await run_logged(make_queue, caplog, logging.DEBUG)
    ran = [line for line in lines if "enqueued" not in line[1]]
    added, positive = add.module_path, require_positive.module_path
    assert (logging.DEBUG, f"Task id={done.id} path={added} state=RUNNING") in ran
    assert (logging.DEBUG, f"Task id={done.id} path={added} state=SUCCESSFUL") in ran
    assert (logging.ERROR, f"Task id={failing.id} path={positive} state=FAILED") in ran
    assert len(ran) == 4 and not [line for line in ran if line[0] == logging.INFO]


async def test_unobserved_tasks_log_only_their_final_failure(
    make_queue: QueueFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # No receiver and no DEBUG logs: the worker builds a TaskResult only for the failure's line.
    done, failing, lines = await run_logged(make_queue, caplog, logging.INFO)
    path = require_positive.module_path
    assert lines == [(logging.ERROR, f"Task id={failing.id} path={path} state=FAILED")]
    assert add.get_result(done.id).return_value == 3
    assert require_positive.get_result(failing.id).status is TaskResultStatus.FAILED


def test_task_failed_text_names_the_class_then_the_traceback() -> None:
    text = failure_text(ZeroDivisionError("division by zero"))
    head, _, traceback = text.partition("\n")
    assert head == "TaskFailed: builtins.ZeroDivisionError: division by zero"
    assert traceback.startswith("Traceback (most recent call last):")
    assert isinstance(task_failure(ZeroDivisionError()), TaskFailed)
    assert task_error(text).traceback == traceback


async def test_build_workers_groups_task_queues_into_one_task_worker(
    tasks_settings: Callable[..., None], queue_config: QueueConfig
) -> None:
    tasks_settings(["default", "emails"])
    options = WorkerOptions(worker_id="w", queues=("emails", "diagnostics", "tasks"))
    group = await wiring.build_workers(options, queue_config)
    try:
        tasks, diagnostics = group.workers
        assert isinstance(tasks, TaskWorker) and tasks.options.queues == ("emails", "tasks")
        assert isinstance(diagnostics, DiagnosticsWorker)
        assert (tasks.worker_id, diagnostics.worker_id) == ("w/emails", "w/diagnostics")
    finally:
        await group.close()


async def test_only_the_debates_kind_routes_results(
    tasks_settings: Callable[..., None], queue_config: QueueConfig
) -> None:
    tasks_settings(["default"])
    options = WorkerOptions(worker_id="w", queues=("debates", "tasks"))
    group = await wiring.build_workers(options, queue_config)
    try:
        layers = {w.options.queues[0]: [type(m) for m in w.chain.middleware] for w in group.workers}
    finally:
        await group.close()

    production = [TracingMiddleware, LoggingMiddleware, MetricsMiddleware]
    assert layers == {"debates": [*production, OriginRoutingMiddleware], "tasks": production}


async def test_connection_sweeper_serves_a_burst_of_requests_with_one_sweep_at_most_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    monkeypatch.setattr(runner, "close_old_connections", lambda: threads.append("swept"))
    sweeper = ConnectionSweeper(interval=0.2)
    sweeper.request()  # after a quiet spell: at once
    await asyncio.sleep(0.05)
    assert threads == ["swept"]
    for _ in range(10):  # tasks finishing within the interval share the next sweep
        sweeper.request()
        await asyncio.sleep(0)
    await asyncio.sleep(0.3)
    assert threads == ["swept", "swept"]
    sweeper.request()
    await sweeper.close()  # a request still waiting is served before the runner stops
    assert threads == ["swept", "swept", "swept"]
