"""The worker runtime against a real redis-server: outcomes, retries, timeouts, cancel, outages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from queue_app.queue import (
    DebateResult,
    Job,
    JobStatus,
    QueueConfig,
    RedisStreamsQueue,
    RetryPolicy,
    create_debate_job,
    create_redis_queue,
)
from queue_app.queue.redis import WorkerRegistry
from workers import (
    BaseWorker,
    DebateWorker,
    Defer,
    LoggingMiddleware,
    MiddlewareChain,
    WorkerOptions,
)
from workers.diagnostics import HANDLERS as DIAGNOSTICS
from workers.runtime import report_progress

FAST_RETRY = RetryPolicy(base_delay_seconds=0.05, max_delay_seconds=0.2, jitter=False)


def diag(job_type: str, **payload: Any) -> Job:
    return Job(payload=payload, metadata={"job_type": job_type})


async def make_worker(queue: RedisStreamsQueue, **options: Any) -> BaseWorker:
    handlers = options.pop("handlers", None) or DIAGNOSTICS
    worker_options = WorkerOptions(
        worker_id=options.pop("worker_id", "w-test"),
        queues=("diagnostics",),
        **{"burst": True, "max_concurrent": 4, **options},
    )
    chain = MiddlewareChain([LoggingMiddleware()])
    return BaseWorker(queue, handlers, worker_options, retry_policy=FAST_RETRY, middleware=chain)


async def run_burst(worker: BaseWorker, timeout: float = 20) -> None:
    await asyncio.wait_for(worker.start(), timeout)


async def enqueue(queue: RedisStreamsQueue, job: Job, **kwargs: Any) -> str:
    return await queue.enqueue(job, queue_name="diagnostics", **kwargs)


async def test_worker_completes_jobs_and_acks_them(queue: RedisStreamsQueue) -> None:
    ids = [await enqueue(queue, diag("sleep", seconds=0.01, tag=i)) for i in range(10)]
    worker = await make_worker(queue)
    await run_burst(worker)
    for i, job_id in enumerate(ids):
        job = await queue.get_status(job_id)
        assert job is not None and job.status is JobStatus.COMPLETED
        assert job.result == {"slept": 0.01, "tag": i} and job.worker_id == "w-test"
    assert (await queue.redis.xpending("aragora:queue:diagnostics:stream", "debate-workers"))[
        "pending"
    ] == 0
    stats = worker.get_stats()
    assert (stats["jobs_processed"], stats["jobs_failed"], stats["active_jobs"]) == (10, 0, 0)
    assert stats["queues"] == ["diagnostics"] and stats["uptime_seconds"] > 0


async def test_retry_recipe_fails_twice_then_succeeds(
    queue: RedisStreamsQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers")
    job_id = await enqueue(queue, diag("fail", succeed_on=3))
    seen: list[str] = []

    async def observe() -> None:
        job = await queue.get_status(job_id)
        if job and (not seen or seen[-1] != job.status.value):
            seen.append(job.status.value)

    async def watch() -> None:
        while True:
            await observe()
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    worker = await make_worker(queue)
    await run_burst(worker)
    watcher.cancel()
    await observe()  # the end, whenever the last poll ran
    job = await queue.get_status(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED and job.attempts == 3
    assert "retrying" in seen and seen[-1] == "completed"
    retries = [r for r in caplog.records if getattr(r, "event", "") == "job.retried"]
    assert len(retries) == 2 and all(r.job_id == job_id for r in retries)
    assert worker.get_stats()["jobs_retried"] == 2


async def test_exhausted_retries_end_failed_in_dead_letters(queue: RedisStreamsQueue) -> None:
    job = diag("fail")
    job.max_attempts = 2
    job_id = await enqueue(queue, job)
    worker = await make_worker(queue)
    await run_burst(worker)
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.FAILED and stored.attempts == 2
    assert stored.error == "DiagnosticFailure: diagnostic failure"
    dead = await queue.tracker.list_dead_letters("diagnostics")
    assert [d.id for d in dead] == [job_id]


async def test_non_retryable_error_fails_at_once(queue: RedisStreamsQueue) -> None:
    job_id = await enqueue(queue, diag("fail", permanent=True, message="bad input"))
    worker = await make_worker(queue)
    await run_burst(worker)
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.FAILED and stored.attempts == 1
    assert stored.error == "ValueError: bad input"


async def test_job_timeout_is_a_retryable_timeout_error(queue: RedisStreamsQueue) -> None:
    job = diag("sleep", seconds=5, timeout_seconds=0.1)
    job.max_attempts = 2
    job_id = await enqueue(queue, job)
    worker = await make_worker(queue)
    started = time.monotonic()
    await run_burst(worker)
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.FAILED and stored.attempts == 2
    assert stored.error is not None and stored.error.startswith("TimeoutError")
    assert time.monotonic() - started < 4
    assert worker.get_stats()["jobs_retried"] == 1


async def test_unknown_job_type_goes_to_dead_letters_and_worker_goes_on(
    queue: RedisStreamsQueue,
) -> None:
    bad = await enqueue(queue, diag("mystery"))
    good = await enqueue(queue, diag("noop"))
    await queue.redis.xadd("aragora:queue:diagnostics:stream", {"junk": "x"})
    after = await enqueue(queue, diag("noop"))
    worker = await make_worker(queue)
    await run_burst(worker)
    stored = await queue.get_status(bad)
    assert stored is not None and stored.status is JobStatus.FAILED
    assert stored.error == "UnknownJobType: unknown job type 'mystery'"
    for job_id in (good, after):
        assert (await queue.get_status(job_id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    dead = {d.id: d.error for d in await queue.tracker.list_dead_letters("diagnostics")}
    assert dead[bad].startswith("UnknownJobType")
    assert "undecodable stream entry" in dead.values()
    assert queue.dead_lettered == {"diagnostics": 1}


async def test_concurrency_is_bounded(queue: RedisStreamsQueue) -> None:
    running, peak = 0, 0

    async def tracked(job: Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    for _ in range(12):
        await enqueue(queue, diag("tracked"))
    worker = await make_worker(queue, handlers={"tracked": tracked}, max_concurrent=3)
    await run_burst(worker)
    assert peak == 3
    assert worker.get_stats()["jobs_processed"] == 12


async def test_cancel_of_running_job_cancels_its_task(queue: RedisStreamsQueue) -> None:
    started = asyncio.Event()
    finished = False

    async def slow(job: Job) -> None:
        nonlocal finished
        started.set()
        await asyncio.sleep(10)
        finished = True

    job_id = await enqueue(queue, diag("slow"))
    worker = await make_worker(queue, handlers={"slow": slow}, burst=False)
    runner = asyncio.create_task(worker.start())
    await asyncio.wait_for(started.wait(), 5)
    assert await queue.cancel(job_id) is True
    deadline = time.monotonic() + 5
    while worker.active_jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert worker.active_jobs == 0 and not finished
    await worker.stop(timeout=1)
    await runner
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.CANCELLED
    assert worker.get_stats()["jobs_cancelled"] == 1


async def test_stop_waits_for_in_flight_jobs(queue: RedisStreamsQueue) -> None:
    ids = [await enqueue(queue, diag("sleep", seconds=0.3)) for _ in range(3)]
    worker = await make_worker(queue, burst=False)
    runner = asyncio.create_task(worker.start())
    while worker.active_jobs < 3:
        await asyncio.sleep(0.01)
    await worker.stop(timeout=5)
    await runner
    assert not worker.is_running
    for job_id in ids:
        assert (await queue.get_status(job_id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_stop_timeout_leaves_unfinished_jobs_for_takeover(make_queue) -> None:
    queue = await make_queue("quitter")
    job_id = await enqueue(queue, diag("sleep", seconds=30))
    worker = await make_worker(queue, burst=False)
    runner = asyncio.create_task(worker.start())
    while worker.active_jobs < 1:
        await asyncio.sleep(0.01)
    await worker.stop(timeout=0.1)
    await runner
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.PROCESSING
    heir = await make_queue("heir")
    assert await heir.claim_stale_jobs(idle_ms=0, queue_names=["diagnostics"]) == 1


async def test_worker_registers_and_unregisters(queue: RedisStreamsQueue) -> None:
    registry = WorkerRegistry(queue.redis, queue.config)
    worker = BaseWorker(
        queue,
        DIAGNOSTICS,
        WorkerOptions(worker_id="reg-1", queues=("diagnostics",)),
        registry=registry,
    )
    runner = asyncio.create_task(worker.start())
    deadline = time.monotonic() + 5
    while not await registry.list_workers() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    [info] = await registry.list_workers()
    assert info["worker_id"] == "reg-1" and info["queues"] == ["diagnostics"]
    assert info["pid"] > 0 and info["host"]
    await worker.stop(timeout=1)
    await runner
    assert await registry.list_workers() == []


async def test_debate_worker_runs_executor_and_stores_result(queue: RedisStreamsQueue) -> None:
    async def executor(job: Job) -> DebateResult:
        return DebateResult(
            debate_id=job.id,
            consensus_reached=True,
            final_answer="yes",
            confidence=0.9,
            rounds_used=1,
            participants=job.payload["agents"],
            duration_seconds=0.0,
        )

    job_id = await queue.enqueue(create_debate_job("Ship it?", agents=["demo"], rounds=1))
    worker = DebateWorker(queue, "debater", executor, max_concurrent=2, burst=True)
    assert worker.worker_id == "debater" and not worker.is_running
    await asyncio.wait_for(worker.start(), 10)
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.COMPLETED
    assert stored.result["final_answer"] == "yes" and stored.result["debate_id"] == job_id


async def test_worker_survives_redis_restart_and_finishes_backlog(
    redis_server_factory: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = redis_server_factory(appendonly=True)
    # A take whose reply the kill loses started its job in Redis (kept by the AOF) with nobody
    # running it: the worker's next take takes it back; should that miss it (a reply lost on
    # the client's pipeline instead of the take lane), the stale claim after claim_idle_ms,
    # here its least (10 s).
    config = QueueConfig(redis_url=server.url, claim_idle_ms=10_000)
    queue = await create_redis_queue(consumer_name="survivor", config=config)
    await queue.redis.config_set("appendfsync", "always")
    ids = [await enqueue(queue, diag("sleep", seconds=0.05)) for _ in range(5)]
    worker = await make_worker(queue, burst=False, max_concurrent=1)
    runner = asyncio.create_task(worker.start())
    await wait_until(lambda: count_completed(queue, ids[:1]), 5)
    server.kill()
    await asyncio.sleep(0.5)
    server.restart()
    ids += [await enqueue(queue, diag("noop")) for _ in range(3)]
    await wait_until(lambda: count_completed(queue, ids, len(ids)), 30)
    await worker.stop(timeout=2)
    await runner
    await queue.close()
    lost = [r for r in caplog.records if "connection lost" in r.getMessage()]
    assert len(lost) >= 1


async def count_completed(queue: RedisStreamsQueue, ids: list[str], want: int = 1) -> bool:
    try:
        jobs = [await queue.get_status(job_id) for job_id in ids]
    except ConnectionError:
        return False
    return sum(1 for job in jobs if job and job.status is JobStatus.COMPLETED) >= want


async def wait_until(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_handler_reports_progress_of_its_own_job(queue: RedisStreamsQueue) -> None:
    seen: list[Any] = []

    async def stepper(job: Job) -> None:
        for step in (1, 2):
            assert await report_progress({"step": step})
            stored = await queue.get_status(job.id)
            seen.append(stored.progress if stored else None)

    job_id = await enqueue(queue, diag("stepper"))
    worker = await make_worker(queue, handlers={"stepper": stepper})
    await run_burst(worker)
    assert seen == [{"step": 1}, {"step": 2}]
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.progress == {"step": 2}
    assert await report_progress({"step": 3}) is False


async def test_deferred_job_runs_later_without_using_an_attempt(queue: RedisStreamsQueue) -> None:
    calls: list[int] = []

    async def patient(job: Job) -> dict[str, int]:
        calls.append(job.attempts)
        if len(calls) < 3:
            raise Defer(0.05, "not yet")
        return {"calls": len(calls)}

    job = diag("patient")
    job.max_attempts = 1
    job_id = await enqueue(queue, job)
    worker = await make_worker(queue, handlers={"patient": patient})
    await run_burst(worker)
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.COMPLETED
    assert stored.result == {"calls": 3} and stored.attempts == 1
    assert calls == [1, 1, 1]
    assert worker.get_stats()["jobs_retried"] == 0 and worker.counters["deferred"] == 2


async def test_burst_worker_does_not_end_when_reading_the_counts_fails(
    redis_server_factory: Callable[..., Any],
) -> None:
    server = redis_server_factory(appendonly=True)
    config = QueueConfig(redis_url=server.url)
    queue = await create_redis_queue(consumer_name="burst", config=config)
    await queue.redis.config_set("appendfsync", "always")
    job_id = await enqueue(queue, diag("noop"))
    worker = await make_worker(queue)
    server.kill()
    assert await worker._queues_empty() is False  # was: the error ended the burst run
    server.restart()
    await run_burst(worker)
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.COMPLETED
    await queue.close()


async def test_outcome_is_written_while_every_slot_stays_busy(queue: RedisStreamsQueue) -> None:
    release = asyncio.Event()

    async def long(job: Job) -> None:
        await release.wait()

    handlers = {**DIAGNOSTICS, "long": long}
    short_id = await enqueue(queue, diag("sleep", seconds=0.05))
    for _ in range(2):
        await enqueue(queue, diag("long"))
    worker = await make_worker(queue, handlers=handlers, max_concurrent=2, burst=False)
    runner = asyncio.create_task(worker.start())
    deadline = time.monotonic() + 5
    while (stored := await queue.get_status(short_id)).status is not JobStatus.COMPLETED:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, stored
        await asyncio.sleep(0.02)
    assert worker.active_jobs == 2  # both long jobs run: no slot freed since the short one's end
    release.set()
    await worker.stop(timeout=5)
    await runner
