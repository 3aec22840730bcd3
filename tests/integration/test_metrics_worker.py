"""A real ``queue_worker`` process serves its metrics and probes on ``--metrics-port``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from prometheus_client import CollectorRegistry

from queue_app.queue import Job, QueueConfig, create_redis_queue
from tests.obs_support import base_env, enqueue, scrape, start_worker, value, wait_for, wait_ready
from workers import Middleware, MiddlewareChain
from workers.metrics import (
    MAX_LABEL_SETS,
    JobStatsCollector,
    MetricsMiddleware,
    record_webhook_delivery,
    set_circuit_state,
)
from workers.metrics import REGISTRY as WORKER_REGISTRY

if TYPE_CHECKING:
    from tests.conftest import RedisServer

JOB = {"queue": "diagnostics"}


def _cancel(redis_url: str, job_id: str) -> bool:
    async def run() -> bool:
        queue = await create_redis_queue(config=QueueConfig(redis_url=redis_url))
        try:
            return await queue.cancel(job_id)
        finally:
            await queue.close()

    return asyncio.run(run())


def test_worker_metrics_count_jobs_by_outcome(redis_url: str, tmp_path: Path) -> None:
    worker, port = start_worker(base_env(redis_url, tmp_path), tmp_path / "worker.log")
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", worker)
        enqueue(redis_url, [("noop", {})] * 5)
        enqueue(redis_url, [("fail", {"permanent": True}), ("fail", {"succeed_on": 2})])
        [sleeper] = enqueue(redis_url, [("sleep", {"seconds": 30})])

        def running() -> bool:
            samples = scrape(metrics)
            started = value(samples, "aragora_queue_jobs_started_total", job_type="sleep", **JOB)
            return started == 1 and value(samples, "aragora_queue_active_jobs", **JOB) == 1

        wait_for(running, "the sleep job to run")
        assert _cancel(redis_url, sleeper)

        def settled() -> bool:
            samples = scrape(metrics)
            done = value(samples, "aragora_queue_jobs_cancelled_total", job_type="sleep", **JOB)
            fail = value(samples, "aragora_queue_jobs_completed_total", job_type="fail", **JOB)
            return done == 1 and fail == 1

        wait_for(settled, "the cancel and the retried job")
        samples = scrape(metrics)
    finally:
        assert worker.stop() == 0, worker.output()

    def total(name: str, job_type: str) -> float | None:
        return value(samples, name, job_type=job_type, **JOB)

    assert total("aragora_queue_jobs_started_total", "noop") == 5
    assert total("aragora_queue_jobs_completed_total", "noop") == 5
    assert total("aragora_queue_jobs_started_total", "fail") == 3  # 1 + 2 attempts
    assert total("aragora_queue_jobs_failed_total", "fail") == 1
    assert total("aragora_queue_jobs_retried_total", "fail") == 1
    assert total("aragora_queue_jobs_completed_total", "fail") == 1
    assert total("aragora_queue_job_duration_seconds_count", "noop") == 5
    assert total("aragora_queue_job_duration_seconds_count", "fail") == 3
    assert total("aragora_queue_job_duration_seconds_count", "sleep") == 1
    # Queue wait is observed for first attempts only.
    assert total("aragora_queue_job_wait_seconds_count", "fail") == 2
    assert total("aragora_queue_job_wait_seconds_count", "sleep") == 1
    wait_sum = total("aragora_queue_job_wait_seconds_sum", "noop")
    assert wait_sum is not None and 0 <= wait_sum < 5 * 10
    assert value(samples, "aragora_queue_active_jobs", **JOB) == 0
    assert value(samples, "aragora_queue_dead_letters_total", reason="failed", **JOB) == 1
    assert value(samples, "aragora_queue_redis_reconnects_total") == 0
    assert value(samples, "process_resident_memory_bytes") is not None
    assert not any("job_id" in dict(labels) for _, labels in samples)


def test_worker_probes_follow_redis(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_server_factory()
    worker, port = start_worker(base_env(server.url, tmp_path), tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/readyz", worker)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/nowhere").status_code == 404
        assert httpx.post(f"{base}/metrics").status_code == 405
        server.kill()
        down = wait_for(
            lambda: (r := httpx.get(f"{base}/readyz", timeout=5)).status_code == 503 and r,
            "readiness to fail with Redis down",
        )
        assert down.json()["checks"]["redis"].startswith("unreachable")
        assert down.json()["checks"]["worker"] == "ok"
        assert httpx.get(f"{base}/healthz").status_code == 200
        server.restart()
        wait_ready(f"{base}/readyz", worker)
        wait_for(
            lambda: value(scrape(f"{base}/metrics"), "aragora_queue_redis_reconnects_total"),
            "the reconnect to be counted",
        )
    finally:
        assert worker.stop() == 0, worker.output()


def _sample(name: str, **labels: str) -> float:
    return WORKER_REGISTRY.get_sample_value(name, labels) or 0.0


def test_worker_metrics_hooks_count_claims_poison_and_webhooks() -> None:
    chain = MiddlewareChain([Middleware(), MetricsMiddleware()])
    before = (
        _sample("aragora_queue_stale_claims_total"),
        _sample("aragora_queue_redis_reconnects_total"),
    )
    poison = _sample("aragora_queue_dead_letters_total", queue="diagnostics", reason="poison")
    chain.emit("on_claim", 3)
    chain.emit("on_reconnect")
    chain.emit("on_dead_letter", 2, "diagnostics")
    record_webhook_delivery("delivered")
    set_circuit_state("billing", "open")
    assert _sample("aragora_queue_stale_claims_total") == before[0] + 3
    assert _sample("aragora_queue_redis_reconnects_total") == before[1] + 1
    assert (
        _sample("aragora_queue_dead_letters_total", queue="diagnostics", reason="poison")
        == poison + 2
    )
    assert _sample("aragora_queue_webhook_deliveries_total", outcome="delivered") >= 1
    assert _sample("aragora_queue_webhook_circuit_state", endpoint="billing") == 2


def test_worker_metrics_cap_job_type_labels() -> None:
    collector = JobStatsCollector()
    middleware = MetricsMiddleware(collector)

    for index in [*range(MAX_LABEL_SETS + 100), 0]:
        job = Job(payload={}, metadata={"job_type": f"t{index}"}, queue="cap", attempts=1)
        middleware.on_start(job)
        middleware.on_end(job)
    registry = CollectorRegistry()
    registry.register(collector)

    def started(job_type: str) -> float | None:
        labels = {"queue": "cap", "job_type": job_type}
        return registry.get_sample_value("aragora_queue_jobs_started_total", labels)

    assert started("t0") == 2
    assert started(f"t{MAX_LABEL_SETS}") is None
    assert started("other") == 100
    assert len(collector.stats) == MAX_LABEL_SETS + 1
