"""Every worker kind, built exactly as ``manage.py queue_worker`` builds it, runs a real job.

``wiring.build_workers`` is what the command calls: the kind's class through its ``build``
class method, the production middleware chain (tracing, logging, metrics), the worker
registry and the Django endpoint store. No CRITICAL line may be logged (a failing middleware
hook logs one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from pytest_httpserver import HTTPServer

from queue_app import wiring
from queue_app.management.commands.queue_worker import Command as QueueWorkerCommand
from queue_app.management.commands.queue_worker import options_of
from queue_app.models import CircuitBreakerState, WebhookEndpoint, from_timestamp
from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue, create_debate_job
from queue_app.tasks.examples import add
from queue_app.tasks.runner import TaskWorker
from tests.kinds_support import build_kind, run_kind
from tests.round_trips import RoundTrips
from workers import (
    DebateWorker,
    DiagnosticsWorker,
    RoutingWorker,
    TranscriptionWorker,
    WebhookDeliveryWorker,
)
from workers.metrics import JOB_STATS
from workers.webhooks import WEBHOOK_JOB_TYPE, WEBHOOKS_QUEUE, create_webhook_job

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)


async def finished(queue: RedisStreamsQueue, job_id: str) -> Job:
    job = await queue.get_status(job_id)
    assert job is not None
    return job


@pytest.fixture(autouse=True)
def no_critical(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail the test if anything logged at CRITICAL (a middleware hook that raised)."""
    with caplog.at_level(logging.INFO):
        yield
    critical = [r.getMessage() for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert critical == []


def test_every_queue_has_a_worker_class() -> None:
    kinds = wiring.worker_kinds()
    assert kinds["debates"] is DebateWorker and kinds[WEBHOOKS_QUEUE] is WebhookDeliveryWorker
    assert kinds["diagnostics"] is DiagnosticsWorker and kinds["tasks"] is TaskWorker
    assert kinds["transcriptions"] is TranscriptionWorker and kinds["routing"] is RoutingWorker


async def test_debate_kind_runs_a_debate_with_offline_agents(
    queue: RedisStreamsQueue, queue_config: QueueConfig, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_DEBATE_EXECUTOR = None
    job = create_debate_job("Is 2 + 2 four?", agents=["demo-a", "demo-b", "demo-c"], rounds=2)
    job_id = await queue.enqueue(job)
    worker = await run_kind("debates", queue_config)
    assert isinstance(worker, DebateWorker)
    done = await finished(queue, job_id)
    assert done.status is JobStatus.COMPLETED, done.error
    assert done.result["debate_id"] == job_id and done.result["rounds_used"] >= 1
    assert worker.counters["completed"] == 1
    assert JOB_STATS.of("debates", "debate").outcomes["completed"] >= 1


async def test_diagnostics_kind_retries_then_completes(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    job = Job(payload={"succeed_on": 2}, metadata={"job_type": "fail"})
    job_id = await queue.enqueue(job, queue_name="diagnostics")
    worker = await run_kind("diagnostics", queue_config)
    done = await finished(queue, job_id)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 2)
    assert worker.counters["retried"] == 1 and worker.counters["completed"] == 1


async def test_tasks_kind_runs_a_task(queue: RedisStreamsQueue, queue_config: QueueConfig) -> None:
    result = await sync_to_async(add.enqueue)(2, 3)
    worker = await run_kind("tasks", queue_config)
    assert isinstance(worker, TaskWorker)
    done = await finished(queue, result.id)
    assert (done.status, done.result) == (JobStatus.COMPLETED, 5)


def _endpoint(url: str, open_circuit: bool) -> int:
    try:
        endpoint = WebhookEndpoint.objects.create(
            url=url, secret="s" * 32, event_types=["job.completed"]
        )
        if open_circuit:  # opened a second ago; its trial is due in 2 s
            now = time.time()
            CircuitBreakerState.objects.update_or_create(
                endpoint=endpoint,
                defaults={
                    "state": "open",
                    "failure_count": 5,
                    "opened_at": from_timestamp(now - 1),
                    "next_attempt_at": from_timestamp(now + 2),
                },
            )
        return endpoint.pk
    finally:
        connection.close()


@pytest.mark.parametrize("open_circuit", [False, True])
async def test_webhook_kind_delivers_and_defers_on_an_open_circuit(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    settings: SettingsWrapper,
    httpserver: HTTPServer,
    open_circuit: bool,
) -> None:
    settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE = True
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    pk = await sync_to_async(_endpoint)(httpserver.url_for("/hook"), open_circuit)
    job = create_webhook_job(pk, "job.completed", {"job_id": "j-1"})
    job_id = await queue.enqueue(job, queue_name=WEBHOOKS_QUEUE)
    worker = await run_kind(WEBHOOKS_QUEUE, queue_config)
    done = await finished(queue, job_id)
    assert done.status is JobStatus.COMPLETED, done.error
    assert done.attempts == 1 and len(httpserver.log) == 1
    assert worker.counters["deferred"] == (1 if open_circuit else 0)
    deferred = JOB_STATS.of(WEBHOOKS_QUEUE, WEBHOOK_JOB_TYPE).outcomes["deferred"]
    assert deferred >= (1 if open_circuit else 0)


async def _built_concurrency(queue_config: QueueConfig, *flags: str) -> dict[str, int]:
    """Build what ``queue_worker --queues <every queue> <flags>`` runs; return each concurrency."""
    kinds = wiring.worker_kinds()
    parser = QueueWorkerCommand().create_parser("manage.py", "queue_worker")
    parsed = vars(parser.parse_args(["--queues", ",".join(kinds), "--burst", *flags]))
    group = await wiring.build_workers(options_of(parsed), queue_config)
    try:
        return {queues: w.max_concurrent for w in group.workers for queues in w.options.queues}
    finally:
        await group.close()


async def test_queue_worker_runs_each_kind_at_its_default_concurrency(
    queue_config: QueueConfig,
) -> None:
    built = await _built_concurrency(queue_config)
    kinds = wiring.worker_kinds()
    defaults = {name: kind.DEFAULT_CONCURRENCY for name, kind in kinds.items()}
    assert built == defaults
    assert built[WEBHOOKS_QUEUE] > built["transcriptions"] and built["tasks"] > built["debates"]


async def test_queue_worker_concurrency_flag_overrides_every_kind(
    queue_config: QueueConfig,
) -> None:
    built = await _built_concurrency(queue_config, "--concurrency", "7")
    assert set(built) == set(wiring.worker_kinds()) and set(built.values()) == {7}


async def test_a_kind_passes_its_runtime_keywords_on_and_refuses_unknown_ones(
    queue: RedisStreamsQueue,
) -> None:
    routing = RoutingWorker(queue, "router", queues=("routing", "extra"), burst=True)
    assert routing.options.queues == ("routing", "extra") and routing.options.burst
    transcriber = TranscriptionWorker(queue, "transcriber", shutdown_timeout=2.5)
    assert transcriber.options.queues == ("transcriptions",)
    assert transcriber.options.shutdown_timeout == 2.5 and not transcriber.options.burst
    with pytest.raises(TypeError, match="shutdown_timout"):
        WebhookDeliveryWorker(queue, "deliverer", shutdown_timout=1.0)  # type: ignore[call-arg]


async def test_outcomes_of_ending_jobs_go_with_the_take_of_the_next_ones(
    queue: RedisStreamsQueue, queue_config: QueueConfig, round_trips: RoundTrips
) -> None:
    """A job ending while the worker's slots are busy frees one: the take that fills it writes
    the outcome in its round trip, instead of the outcome writer in a round trip of its own
    (the diagnostics kind as ``queue_worker`` builds it, with its middleware)."""
    ids = []
    for i in range(30):
        job = Job(payload={"seconds": 0.01 * (1 + i % 3)}, metadata={"job_type": "sleep"})
        ids.append(await queue.enqueue(job, queue_name="diagnostics"))
    group = await build_kind("diagnostics", queue_config, max_concurrent=3)
    round_trips.reset()
    try:
        await asyncio.wait_for(group.start(), 30)
    finally:
        sent = round_trips.count
        await group.close()
    for job_id in ids:
        stored = await queue.get_status(job_id)
        assert stored is not None and stored.status is JobStatus.COMPLETED
    assert group.workers[0].get_stats()["jobs_processed"] == 30
    # About one take a job, a dozen to connect and end the burst, and a few writes of their own
    # (the last jobs'): 42-43. Writing each outcome apart from the take made it 65-71.
    assert sent <= 52, sent
