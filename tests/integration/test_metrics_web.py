"""The web's ``/metrics``: Django's metrics plus queue gauges read from Redis at scrape time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import redis

from queue_app.queue import Job, QueueConfig, create_redis_queue
from queue_app.queue.redis import WorkerRegistry
from tests.obs_support import Samples, free_port, scrape, value, wait_for
from tests.queue_ops import take

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_django.fixtures import SettingsWrapper
    from pytest_django.live_server_helper import LiveServer

    from tests.conftest import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)
DIAG = {"queue": "diagnostics"}


@pytest.fixture
def web(django_db_setup: None, live_server: LiveServer) -> LiveServer:
    """Return the live server, started after the test database exists (it shares it)."""
    return live_server


async def _build_state(redis_url: str) -> None:
    """Five ready jobs, one delayed; of the ready ones one is dead-lettered, one in flight."""
    config = QueueConfig(redis_url=redis_url)
    queue = await create_redis_queue(consumer_name="dead-1", config=config)
    try:
        delayed = Job(payload={}, metadata={"job_type": "noop"})
        await queue.enqueue(delayed, queue_name="diagnostics", delay_seconds=60)
        jobs = [Job(payload={"i": i}, metadata={"job_type": "noop"}) for i in range(5)]
        await queue.enqueue_many(jobs, "diagnostics")
        taken = await take(queue, 2, "diagnostics")
        assert len(taken) == 2
        await queue.fail(taken[0].id, "boom")
        registry = WorkerRegistry(queue.redis, config)
        await registry.register({"worker_id": "w-1", "queues": ["diagnostics"]}, 30)
    finally:
        await queue.close()


async def _enqueue_more(redis_url: str, count: int) -> None:
    queue = await create_redis_queue(config=QueueConfig(redis_url=redis_url))
    try:
        jobs = [Job(payload={"i": i}, metadata={"job_type": "noop"}) for i in range(count)]
        await queue.enqueue_many(jobs, "diagnostics")
    finally:
        await queue.close()


def test_metrics_web_reports_queue_state(web: LiveServer, redis_url: str) -> None:
    asyncio.run(_build_state(redis_url))
    url = f"{web.url}/metrics"

    def aged() -> Samples | None:
        samples = scrape(url)
        age = value(samples, "aragora_queue_oldest_pending_age_seconds", **DIAG)
        return samples if age is not None and age >= 0.2 else None

    samples = wait_for(aged, "the oldest ready job to age")
    assert value(samples, "aragora_queue_redis_up") == 1
    assert value(samples, "aragora_queue_depth", **DIAG) == 3
    assert value(samples, "aragora_queue_in_flight", **DIAG) == 1
    assert value(samples, "aragora_queue_delayed", **DIAG) == 1
    assert value(samples, "aragora_queue_dead_letter_jobs", **DIAG) == 1
    assert value(samples, "aragora_queue_jobs", status="pending", **DIAG) == 4
    assert value(samples, "aragora_queue_jobs", status="processing", **DIAG) == 1
    assert value(samples, "aragora_queue_jobs", status="failed", **DIAG) == 1
    assert value(samples, "aragora_queue_jobs", status="completed", **DIAG) == 0
    assert value(samples, "aragora_queue_oldest_pending_age_seconds", **DIAG) < 30
    assert value(samples, "aragora_queue_depth", queue="debates") == 0
    assert value(samples, "aragora_queue_live_workers") == 1
    assert value(samples, "aragora_queue_workers", **DIAG) == 1
    assert value(samples, "aragora_queue_workers", queue="debates") == 0
    assert any(name.startswith("django_http_requests") for name, _ in samples)


def test_metrics_web_scrape_cost_does_not_grow_with_jobs(
    web: LiveServer,
    settings: SettingsWrapper,
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    # A server of its own: no other client's commands in the count.
    redis_url = redis_server_factory().url
    settings.REDIS_URL = redis_url
    asyncio.run(_build_state(redis_url))
    client = redis.Redis.from_url(redis_url)

    def commands_of_one_scrape() -> int:
        before = int(client.info("stats")["total_commands_processed"])
        scrape(f"{web.url}/metrics")
        return int(client.info("stats")["total_commands_processed"]) - before

    small = commands_of_one_scrape()
    asyncio.run(_enqueue_more(redis_url, 3000))
    assert commands_of_one_scrape() == small
    assert small < 60  # two queues, a fixed set of commands each
    client.close()


def test_metrics_web_survives_redis_down(web: LiveServer, settings: SettingsWrapper) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    samples = scrape(f"{web.url}/metrics")
    assert value(samples, "aragora_queue_redis_up") == 0
    assert value(samples, "aragora_queue_depth", **DIAG) is None
    assert any(name.startswith("django_http_requests") for name, _ in samples)
