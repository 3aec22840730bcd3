"""The reference's webhook API as written: no store argument, url and secret at enqueue time.

Without Django, endpoints live in the queue's records in Redis; these tests read Redis directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json

import pytest
from cryptography.fernet import Fernet
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook

from queue_app.queue import ConfigError, JobStatus, QueueConfig, RedisStreamsQueue
from queue_app.wiring import build_workers
from tests.integration.conftest import QueueFactory
from workers import (
    DeliveryResult,
    EndpointHealth,
    WebhookDeliveryWorker,
    WorkerOptions,
    enqueue_webhook_delivery,
)
from workers.webhooks import BreakerState, CircuitState, RedisEndpointStore, TargetRefused

KEY = Fernet.generate_key().decode()
REFERENCE_STATS = {
    "worker_id",
    "is_running",
    "uptime_seconds",
    "deliveries_total",
    "deliveries_succeeded",
    "deliveries_failed",
    "active_deliveries",
    "endpoints_tracked",
    "queue_name",
}


@pytest.fixture
async def queue(make_queue: QueueFactory, queue_config: QueueConfig) -> RedisStreamsQueue:
    """Return a queue configured as ARAGORA_WEBHOOK_SECRET_KEYS and _ALLOW_PRIVATE would."""
    config = dataclasses.replace(
        queue_config, webhook_secret_keys=(KEY,), webhook_allow_private=True
    )
    return await make_queue(config=config)


async def run_until(worker: WebhookDeliveryWorker, server: HTTPServer, count: int) -> None:
    """Run ``worker`` until ``server`` received ``count`` requests, then stop it."""
    task = asyncio.create_task(worker.start())
    async with asyncio.timeout(20):
        while len(server.log) < count:
            await asyncio.sleep(0.02)
    await worker.stop()
    await task


async def test_reference_webhook_example_runs_as_written(
    queue: RedisStreamsQueue, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/webhook", method="POST").respond_with_data("ok")
    url = httpserver.url_for("/webhook")
    # The reference README's example, word for word but for the URL.
    worker = WebhookDeliveryWorker(
        queue=queue,
        worker_id="webhook-worker-1",
        max_concurrent=10,
        request_timeout=10.0,
    )
    job = await enqueue_webhook_delivery(
        queue=queue,
        webhook_id="wh-123",
        url=url,
        secret="signing-secret",
        event_type="debate.completed",
        event_data={"debate_id": "d-456", "result": {"consensus_reached": True}},
    )
    await run_until(worker, httpserver, 1)

    ((request, _),) = httpserver.log
    body = request.get_data()
    expected = hmac.new(b"signing-secret", body, hashlib.sha256).hexdigest()
    assert request.headers["X-Signature-SHA256"] == f"sha256={expected}"
    assert request.headers["X-Webhook-ID"] == "wh-123"
    assert request.headers["X-Delivery-Attempt"] == "1"
    event = Webhook(b"signing-secret").verify(body, dict(request.headers))
    assert event["type"] == "debate.completed"
    assert event["data"] == {"debate_id": "d-456", "result": {"consensus_reached": True}}
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.result["success"] is True and done.result["url"] == url
    assert done.metadata["event_type"] == "debate.completed"
    health = worker.get_endpoint_health(url)
    assert isinstance(health, EndpointHealth) and worker.get_all_endpoint_health() == [health]
    assert (health.total_deliveries, health.successful_deliveries, health.circuit_state) == (
        1,
        1,
        "closed",
    )
    stats = worker.get_stats()
    assert set(stats) >= REFERENCE_STATS and stats["queue_name"] == "webhook_delivery"
    assert (stats["deliveries_total"], stats["deliveries_succeeded"]) == (1, 1)
    assert stats["endpoints_tracked"] == 1 and stats["worker_id"] == "webhook-worker-1"


async def test_reference_constants_drive_backoff_and_circuit(queue: RedisStreamsQueue) -> None:
    cls = WebhookDeliveryWorker
    assert (cls.QUEUE_NAME, cls.MAX_RETRIES) == ("webhook_delivery", 5)
    assert (cls.INITIAL_BACKOFF_SECONDS, cls.MAX_BACKOFF_SECONDS, cls.BACKOFF_MULTIPLIER) == (
        1.0,
        60.0,
        2.0,
    )
    assert (cls.CIRCUIT_FAILURE_THRESHOLD, cls.CIRCUIT_RESET_TIMEOUT) == (5, 60.0)
    worker = cls(queue, "w", request_timeout=3.0)
    try:
        policy = worker.retry_policy
        assert (policy.max_attempts, policy.base_delay_seconds, policy.max_delay_seconds) == (
            5,
            1.0,
            60.0,
        )
        options = worker.deliverer.options
        assert (options.read_timeout, options.allow_private) == (3.0, True)
        assert (options.circuit.failure_threshold, options.circuit.open_seconds) == (5, 60.0)
        assert DeliveryResult("wh", "u", True).attempt == 1
    finally:
        await worker.deliverer.aclose()


async def test_enqueue_webhook_delivery_keeps_the_secret_out_of_the_job_and_plain_text(
    queue: RedisStreamsQueue,
) -> None:
    job = await enqueue_webhook_delivery(
        queue, "wh-1", "https://hooks.example.com/a", "caller-secret-0123", "job.completed", {}
    )
    stored = await queue.redis.hgetall(f"aragora:queue:job:{job.id}")
    assert json.loads(stored["payload"]) == {
        "webhook_id": "wh-1",
        "event_type": "job.completed",
        "event_data": {},
        "delivery_id": job.id,
        "occurred_at": job.created_at,
        "registry": "queue",
    }
    dump = json.dumps(stored) + str(
        await queue.redis.get("aragora:queue:rec:webhook:endpoint:wh-1")
    )
    assert "caller-secret" not in dump and "hooks.example.com/a" in dump
    endpoint = await RedisEndpointStore.of_queue(queue).get_endpoint("wh-1")
    assert endpoint is not None and endpoint.secret == "caller-secret-0123"


async def test_enqueue_webhook_delivery_refuses_private_targets_and_missing_keys(
    make_queue: QueueFactory, queue_config: QueueConfig
) -> None:
    strict = await make_queue(config=dataclasses.replace(queue_config, webhook_secret_keys=(KEY,)))
    with pytest.raises(TargetRefused, match="not a public address"):
        await enqueue_webhook_delivery(strict, "wh", "http://127.0.0.1/x", "s" * 16, "e", {})
    keyless = await make_queue(config=queue_config)
    with pytest.raises(ConfigError, match="ARAGORA_WEBHOOK_SECRET_KEYS"):
        await enqueue_webhook_delivery(keyless, "wh", "https://a.example/x", "s" * 16, "e", {})
    assert await strict.redis.keys("aragora:queue:*job*") == []


async def test_410_stops_a_registered_endpoint_until_it_registers_another_url(
    queue: RedisStreamsQueue, httpserver: HTTPServer
) -> None:
    httpserver.expect_ordered_request("/old").respond_with_data("gone", 410)
    httpserver.expect_ordered_request("/new").respond_with_data("ok")
    old, new = httpserver.url_for("/old"), httpserver.url_for("/new")
    sent = []
    for url, secret in ((old, "first-secret"), (old, "first-secret"), (new, "second-secret")):
        job = await enqueue_webhook_delivery(queue, "wh-9", url, secret, "a", {"url": url})
        await WebhookDeliveryWorker(queue, "w", burst=True).start()
        sent.append(await queue.get_status(job.id))

    assert [r.path for r, _ in httpserver.log] == ["/old", "/new"]
    last = httpserver.log[-1][0]
    assert Webhook(b"second-secret").verify(last.get_data(), dict(last.headers))["data"] == {
        "url": new
    }
    assert [(job.status, (job.error or "")[:12]) for job in sent if job] == [
        (JobStatus.FAILED, "DeliveryReje"),
        (JobStatus.FAILED, "EndpointGone"),  # stopped: the same URL does not revive it
        (JobStatus.COMPLETED, ""),
    ]
    record = json.loads(await queue.redis.get("aragora:queue:rec:webhook:endpoint:wh-9"))
    assert (record["url"], record["is_active"], record["stopped_because"]) == (new, True, "")
    log = await queue.redis.lrange("aragora:queue:rec:webhook:deliveries:wh-9", 0, -1)
    assert [json.loads(entry)["status_code"] for entry in log] == [200, 410]


async def test_redis_store_admits_exactly_one_trial_among_concurrent_workers(
    queue: RedisStreamsQueue,
) -> None:
    store = RedisEndpointStore.of_queue(queue)
    opened = CircuitState(state=BreakerState.OPEN, failure_count=5, next_attempt_at=100.0)
    await store.update_circuit("wh-1", lambda _: opened)
    results = await asyncio.gather(
        *(store.update_circuit("wh-1", lambda c: c.admitting(100.0, 30.0)) for _ in range(8))
    )
    assert sum(before.admits(100.0) for before, _ in results) == 1
    stored = json.loads(await queue.redis.get("aragora:queue:rec:webhook:circuit:wh-1"))
    assert stored["state"] == "half_open" and stored["next_attempt_at"] == 130.0


@pytest.mark.django_db(transaction=True)
async def test_queue_worker_delivers_endpoints_registered_by_the_reference_function(
    queue: RedisStreamsQueue, httpserver: HTTPServer, settings: object
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE = True  # type: ignore[attr-defined]
    job = await enqueue_webhook_delivery(
        queue, "wh-5", httpserver.url_for("/hook"), "whsec-free-form", "job.completed", {}
    )
    options = WorkerOptions(worker_id="w", queues=("webhook_delivery",), burst=True)
    group = await build_workers(options, queue.config)
    try:
        await asyncio.wait_for(group.start(), 30)
    finally:
        await group.close()

    assert len(httpserver.log) == 1
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
