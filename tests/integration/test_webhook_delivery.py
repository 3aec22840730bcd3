"""Webhook delivery against real HTTP receivers on 127.0.0.1, a real Redis and the database."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from werkzeug import Request, Response

from queue_app.models import CircuitBreakerState, WebhookDelivery, WebhookEndpoint
from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue, RetryPolicy
from queue_app.queue.tracing import job_trace_id
from queue_app.services.webhook_events import emit_event
from queue_app.stores.endpoints import DjangoEndpointStore, change_circuit, record_delivery
from queue_app.wiring import build_workers, worker_middleware
from tests.api_support import make_user, token_client
from tests.conftest import free_port
from workers import MiddlewareChain, TracingMiddleware, WebhookDeliveryWorker, WorkerOptions
from workers.webhooks import (
    WEBHOOKS_QUEUE,
    BreakerState,
    CircuitPolicy,
    CircuitState,
    DeliveryAttempt,
    DeliveryOptions,
    create_webhook_job,
    generate_secret,
    reference_signature,
)

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = generate_secret()
FAST_RETRY = RetryPolicy(base_delay_seconds=0.05, max_delay_seconds=0.2, jitter=False)
LOCAL = DeliveryOptions(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=5)


@pytest.fixture
def receiver() -> Iterator[HTTPServer]:
    """Return an HTTP server on 127.0.0.1 that records every request."""
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    server.stop()


def make_endpoint(url: str, **fields: Any) -> WebhookEndpoint:
    defaults = {
        "event_types": ["job.completed", "job.failed"],
        "organization": "acme",
        "secret": SECRET,
    }
    return WebhookEndpoint.objects.create(url=url, **{**defaults, **fields})


@pytest.fixture
def endpoint(receiver: HTTPServer) -> WebhookEndpoint:
    """Return an active endpoint of organization acme posting to the receiver's /hook."""
    return make_endpoint(receiver.url_for("/hook"))


async def in_db[R](function: Callable[..., R], *args: Any) -> R:
    """Run ``function`` in asgiref's database thread, then close that thread's connection."""

    def run() -> R:
        try:
            return function(*args)
        finally:
            connection.close()

    return await sync_to_async(run)()


@dataclass
class Snapshot:
    endpoint: WebhookEndpoint
    circuit: CircuitBreakerState
    deliveries: list[WebhookDelivery]


def _snapshot(pk: int) -> Snapshot:
    return Snapshot(
        WebhookEndpoint.objects.get(pk=pk),
        CircuitBreakerState.objects.get(endpoint_id=pk),
        list(WebhookDelivery.objects.filter(endpoint_id=pk).order_by("attempt", "pk")),
    )


async def deliver(
    queue: RedisStreamsQueue,
    *jobs: Job,
    options: DeliveryOptions = LOCAL,
    retry_policy: RetryPolicy = FAST_RETRY,
    middleware: MiddlewareChain | None = None,
) -> WebhookDeliveryWorker:
    """Enqueue ``jobs`` on the webhooks queue and run a burst worker until they are done."""
    for job in jobs:
        await queue.enqueue(job, queue_name=WEBHOOKS_QUEUE)
    worker = WebhookDeliveryWorker(
        queue,
        "w-hooks",
        store=DjangoEndpointStore(),
        options=options,
        retry_policy=retry_policy,
        middleware=middleware or MiddlewareChain(worker_middleware()),
        burst=True,
    )
    await asyncio.wait_for(worker.start(), 30)
    return worker


async def status(queue: RedisStreamsQueue, job_id: str) -> Job:
    job = await queue.get_status(job_id)
    assert job is not None
    return job


def requests(server: HTTPServer) -> list[Request]:
    return [request for request, _ in server.log]


def verified(request: Request, secret: str = SECRET) -> Any:
    """Return the body of ``request`` verified as a receiver would (Standard Webhooks), and
    check the reference's ``X-Signature-SHA256`` too."""
    body = request.get_data()
    assert request.headers["X-Signature-SHA256"] == reference_signature(secret, body)
    return Webhook(secret).verify(body, dict(request.headers))


def event(endpoint: WebhookEndpoint, **options: Any) -> Job:
    return create_webhook_job(endpoint.pk, "job.completed", {"job_id": "j-1"}, **options)


async def test_webhook_delivers_a_signed_event_the_receiver_can_verify(
    queue: RedisStreamsQueue, receiver: HTTPServer, endpoint: WebhookEndpoint
) -> None:
    receiver.expect_oneshot_request("/hook", method="POST").respond_with_data("thanks")
    job = event(endpoint)
    await deliver(queue, job)

    (request,) = requests(receiver)
    assert verified(request) == {
        "type": "job.completed",
        "timestamp": json.loads(request.get_data())["timestamp"],
        "data": {"job_id": "j-1"},
    }
    assert request.headers["webhook-id"] == job.id
    assert request.headers["X-Webhook-ID"] == str(endpoint.pk)
    assert request.headers["X-Aragora-Event"] == "job.completed"
    assert request.headers["X-Delivery-Attempt"] == "1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Aragora-Webhooks/1.0"
    assert request.headers["Host"] == f"127.0.0.1:{receiver.port}"
    done = await status(queue, job.id)
    assert done.status is JobStatus.COMPLETED
    result = dict(done.result)
    assert result.pop("delivered_at") > 0 and result.pop("response_time_ms") > 0
    assert result == {
        "webhook_id": str(endpoint.pk),
        "url": endpoint.url,
        "success": True,
        "status_code": 200,
        "error": None,
        "attempt": 1,
        "delivery_id": job.id,
    }
    seen = await in_db(_snapshot, endpoint.pk)
    (row,) = seen.deliveries
    assert (row.status_code, row.attempt, row.job_id, row.delivery_id, row.event) == (
        200,
        1,
        job.id,
        job.id,
        "job.completed",
    )
    assert row.response_excerpt == "thanks" and row.error == "" and row.duration_seconds
    assert (seen.endpoint.success_count, seen.endpoint.failure_count) == (1, 0)
    assert seen.endpoint.last_success_at is not None and seen.circuit.state == "closed"


async def test_webhook_to_an_endpoint_of_before_whsec_secrets_still_verifies(
    queue: RedisStreamsQueue, receiver: HTTPServer
) -> None:
    legacy = "a-plain-secret-from-before"
    endpoint = await in_db(lambda: make_endpoint(receiver.url_for("/hook"), secret=legacy))
    receiver.expect_request("/hook", method="POST").respond_with_data("")
    await deliver(queue, event(endpoint))

    (request,) = requests(receiver)
    body = request.get_data()
    assert Webhook(legacy.encode()).verify(body, dict(request.headers))
    assert request.headers["X-Signature-SHA256"] == reference_signature(legacy, body)


async def test_webhook_5xx_is_retried_with_the_same_delivery_id_then_delivered(
    queue: RedisStreamsQueue, receiver: HTTPServer, endpoint: WebhookEndpoint
) -> None:
    for code in (503, 500, 200):
        receiver.expect_ordered_request("/hook", method="POST").respond_with_data("", code)
    job = event(endpoint)
    await deliver(queue, job)

    sent = requests(receiver)
    assert [r.headers["webhook-id"] for r in sent] == [job.id] * 3
    assert [r.headers["X-Delivery-Attempt"] for r in sent] == ["1", "2", "3"]
    assert all(verified(r) for r in sent)
    assert len({r.get_data() for r in sent}) == 1
    done = await status(queue, job.id)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 3)
    seen = await in_db(_snapshot, endpoint.pk)
    assert [d.status_code for d in seen.deliveries] == [503, 500, 200]
    assert [d.error for d in seen.deliveries] == ["HTTP 503", "HTTP 500", ""]
    health = seen.endpoint
    assert (health.failure_count, health.success_count, health.consecutive_failures) == (2, 1, 0)
    assert (seen.circuit.state, seen.circuit.failure_count) == ("closed", 0)


async def test_webhook_410_fails_at_once_and_deactivates_the_endpoint(
    queue: RedisStreamsQueue,
    receiver: HTTPServer,
    endpoint: WebhookEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.expect_request("/hook", method="POST").respond_with_data("gone", 410)
    job, later = event(endpoint), event(endpoint)
    await deliver(queue, job)
    await deliver(queue, later)

    assert len(requests(receiver)) == 1
    failed = await status(queue, job.id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)
    assert failed.error == f"DeliveryRejected: webhook endpoint {endpoint.pk}: HTTP 410"
    skipped = await status(queue, later.id)
    assert skipped.error == f"EndpointGone: webhook endpoint {endpoint.pk} is inactive"
    seen = await in_db(_snapshot, endpoint.pk)
    assert [(d.status_code, d.response_excerpt) for d in seen.deliveries] == [(410, "gone")]
    assert (seen.endpoint.failure_count, seen.endpoint.consecutive_failures) == (1, 1)
    assert not seen.endpoint.is_active
    assert seen.endpoint.deactivated_reason == "answered 410 Gone"
    assert seen.circuit.state == "closed"  # the endpoint answered: it is up
    assert "answered 410 Gone: deactivated" in caplog.text


@pytest.mark.parametrize("status_code", [429, 503])
async def test_webhook_retry_after_is_honoured_within_the_backoff_cap(
    queue: RedisStreamsQueue, receiver: HTTPServer, endpoint: WebhookEndpoint, status_code: int
) -> None:
    arrivals: list[float] = []
    replies = iter([Response("", status_code, {"Retry-After": "1"}), Response("", 200)])

    def reply(_: Request) -> Response:
        arrivals.append(time.monotonic())
        return next(replies)

    receiver.expect_request("/hook").respond_with_handler(reply)
    # Without Retry-After the worker would try again after 0.05 s.
    patient = RetryPolicy(base_delay_seconds=0.05, max_delay_seconds=5.0, jitter=False)
    job = event(endpoint)
    await deliver(queue, job, retry_policy=patient)

    assert (await status(queue, job.id)).status is JobStatus.COMPLETED
    assert arrivals[1] - arrivals[0] >= 0.95


async def test_webhook_retry_after_beyond_the_cap_waits_only_the_cap(
    queue: RedisStreamsQueue, receiver: HTTPServer, endpoint: WebhookEndpoint
) -> None:
    replies = iter([Response("", 429, {"Retry-After": "86400"}), Response("", 200)])
    receiver.expect_request("/hook").respond_with_handler(lambda _: next(replies))
    job = event(endpoint)
    await deliver(queue, job)  # FAST_RETRY caps delays at 0.2 s; deliver() gives up after 30 s

    done = await status(queue, job.id)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 2)


async def test_webhook_transport_error_is_retried_and_recorded_without_status(
    queue: RedisStreamsQueue,
) -> None:
    closed = await in_db(make_endpoint, f"http://127.0.0.1:{free_port()}/hook")
    job = event(closed, max_attempts=2)
    await deliver(queue, job)

    failed = await status(queue, job.id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 2)
    assert failed.error == f"EndpointUnavailable: webhook endpoint {closed.pk}: no response"
    seen = await in_db(_snapshot, closed.pk)
    assert [d.status_code for d in seen.deliveries] == [None, None]
    assert all(d.error.startswith("ConnectError") for d in seen.deliveries)
    assert (seen.circuit.state, seen.circuit.failure_count) == ("closed", 2)


async def test_webhook_circuit_opens_after_failures_and_half_opens_after_its_timeout(
    queue: RedisStreamsQueue,
    receiver: HTTPServer,
    endpoint: WebhookEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="workers.webhooks")
    codes = iter([500, 500, 200])
    receiver.expect_request("/hook").respond_with_handler(lambda _: Response("", next(codes)))
    # Open long enough that the next burst run's first attempt always meets the open circuit.
    policy = CircuitPolicy(failure_threshold=2, open_seconds=3.0)
    options = DeliveryOptions(allow_private=True, total_timeout=5, circuit=policy)
    first = [event(endpoint, max_attempts=1) for _ in range(2)]
    await deliver(queue, *first, options=options)
    opened = (await in_db(_snapshot, endpoint.pk)).circuit
    assert (opened.state, opened.failure_count) == ("open", 2)
    assert opened.opened_at and opened.next_attempt_at
    assert (opened.next_attempt_at - opened.opened_at).total_seconds() == pytest.approx(3.0)

    # Met by the open circuit, the delivery is deferred (no attempt used) until a trial may go.
    slow_retry = RetryPolicy(base_delay_seconds=1.0, max_delay_seconds=2.0, jitter=False)
    job = event(endpoint, max_attempts=1)
    await deliver(queue, job, options=options, retry_policy=slow_retry)

    assert len(requests(receiver)) == 3  # nothing reached the endpoint while open
    done = await status(queue, job.id)
    assert done.status is JobStatus.COMPLETED and done.attempts == 1
    seen = await in_db(_snapshot, endpoint.pk)
    skipped = [d for d in seen.deliveries if d.job_id == job.id and d.status_code is None]
    assert len(skipped) >= 1
    assert all("is open" in d.error for d in skipped)
    assert (seen.circuit.state, seen.circuit.failure_count) == ("closed", 0)
    assert seen.endpoint.failure_count == 2  # skipped deliveries do not count
    transitions = [r.getMessage().split(": ")[1] for r in caplog.records if "circuit" in r.msg]
    assert [t.split(" after")[0] for t in transitions] == [
        "closed -> open",
        "open -> half_open",
        "half_open -> closed",
    ]


async def test_webhook_private_target_is_refused_unless_allowed(
    queue: RedisStreamsQueue, receiver: HTTPServer, endpoint: WebhookEndpoint
) -> None:
    job = event(endpoint)
    await deliver(queue, job, options=DeliveryOptions())

    assert requests(receiver) == []
    failed = await status(queue, job.id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)
    assert failed.error == (
        f"TargetRefused: webhook endpoint {endpoint.pk}: webhook target is not a public address"
    )
    seen = await in_db(_snapshot, endpoint.pk)
    assert [(d.status_code, d.error) for d in seen.deliveries] == [
        (None, "webhook target is not a public address")
    ]
    assert seen.endpoint.failure_count == 1


@pytest.mark.parametrize("allowed", [False, True])
async def test_wiring_builds_the_webhook_kind_from_settings(
    settings: SettingsWrapper, allowed: bool, queue_config: QueueConfig
) -> None:
    settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE = allowed
    options = WorkerOptions(worker_id="w", queues=(WEBHOOKS_QUEUE,))
    group = await build_workers(options, queue_config)
    try:
        [worker] = group.workers
        assert isinstance(worker, WebhookDeliveryWorker)
        assert worker.deliverer.options.allow_private is allowed
        assert isinstance(worker.deliverer.store, DjangoEndpointStore)
    finally:
        await worker.deliverer.aclose()
        await group.close()


@pytest.mark.parametrize("change", [{"is_active": False}, {"event_types": ["job.failed"]}])
async def test_webhook_to_inactive_or_unsubscribed_endpoint_fails_without_request(
    queue: RedisStreamsQueue, receiver: HTTPServer, change: dict[str, Any]
) -> None:
    endpoint = await in_db(make_endpoint, receiver.url_for("/hook"))
    await in_db(lambda: WebhookEndpoint.objects.filter(pk=endpoint.pk).update(**change))
    missing = create_webhook_job(10**9, "job.completed", {})
    job = event(endpoint)
    await deliver(queue, job, missing)

    assert requests(receiver) == []
    for job_id in (job.id, missing.id):
        failed = await status(queue, job_id)
        assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)
        assert failed.error is not None and failed.error.startswith("EndpointGone")


async def redis_dump(queue: RedisStreamsQueue) -> str:
    """Return every key and value in Redis as one string."""
    parts = []
    async for key in queue.redis.scan_iter():
        kind = await queue.redis.type(key)
        read = {
            "string": queue.redis.get,
            "hash": queue.redis.hgetall,
            "zset": lambda k: queue.redis.zrange(k, 0, -1, withscores=True),
            "stream": queue.redis.xrange,
            "set": queue.redis.smembers,
            "list": lambda k: queue.redis.lrange(k, 0, -1),
        }[kind]
        parts.append(f"{key} {await read(key)}")
    return "\n".join(parts)


async def test_webhook_secret_never_in_job_payloads_logs_or_api(
    queue: RedisStreamsQueue,
    receiver: HTTPServer,
    endpoint: WebhookEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    jobs = await in_db(lambda: emit_event("job.completed", {"job_id": "j-3"}, organization="acme"))
    assert len(jobs) == 1 and set(jobs[0].payload) >= {"webhook_id", "delivery_id"}
    await deliver(queue)

    (request,) = requests(receiver)
    signatures = [
        request.headers["webhook-signature"].split(",")[1],
        request.headers["X-Signature-SHA256"].split("=")[1],
    ]
    assert (await status(queue, jobs[0].id)).status is JobStatus.COMPLETED
    stored = await redis_dump(queue)
    logged = caplog.text + "\n".join(str(vars(record)) for record in caplog.records)
    in_database = await in_db(database_dump)
    for text in (stored, logged, in_database):
        assert SECRET not in text and not any(sig in text for sig in signatures)
    api = await in_db(lambda: token_client(make_user("root", staff=True)))
    for path in ("/api/queue/webhooks/", f"/api/queue/jobs/{jobs[0].id}/", "/api/queue/jobs/"):
        response = await in_db(api.get, path)
        assert response.status_code == 200 and SECRET.encode() not in response.content


def database_dump() -> str:
    """Return every row of the webhook tables as one string."""
    rows = [list(WebhookEndpoint.objects.values()), list(WebhookDelivery.objects.values())]
    return str(rows)


def test_emit_event_fans_out_to_active_subscribed_endpoints_of_the_scope(
    redis_url: str, receiver: HTTPServer
) -> None:
    url = receiver.url_for("/hook")
    owner = make_user("bob")
    wanted = make_endpoint(url)
    make_endpoint(url, is_active=False)
    make_endpoint(url, event_types=["job.failed"])
    make_endpoint(url, organization="globex")
    own = make_endpoint(url, organization="", owner=owner)

    by_org = emit_event("job.completed", {"job_id": "j-4"}, organization="acme")
    assert [job.payload["webhook_id"] for job in by_org] == [str(wanted.pk)]
    assert by_org[0].metadata == {
        "owner": "",
        "organization": "acme",
        "job_type": "webhook_delivery",
        "event_type": "job.completed",
    }
    both = emit_event("job.completed", {}, organization="acme", owner=owner.pk)
    assert sorted(job.payload["webhook_id"] for job in both) == sorted(
        [str(wanted.pk), str(own.pk)]
    )
    assert emit_event("job.completed", {}) == []
    with pytest.raises(ValueError, match="unknown event type"):
        emit_event("debate.finished", {}, organization="acme")


def test_django_store_admits_one_trial_and_counts_health_with_f_expressions(
    endpoint: WebhookEndpoint,
) -> None:
    key = str(endpoint.pk)
    opened = CircuitState(state=BreakerState.OPEN, failure_count=5, next_attempt_at=100.0)
    change_circuit(key, lambda _: opened)
    granted = [change_circuit(key, lambda c: c.admitting(100.0, 30.0))[0].admits(100.0)]
    granted += [change_circuit(key, lambda c: c.admitting(101.0, 30.0))[0].admits(101.0)]
    assert granted == [True, False]
    circuit = CircuitBreakerState.objects.get(endpoint=endpoint)
    assert circuit.state == "half_open" and circuit.next_attempt_at.timestamp() == 130.0
    for outcome in ("retry", "circuit_open", "failed", "delivered"):
        attempt = DeliveryAttempt(
            endpoint_id=key,
            job_id="j",
            delivery_id="d",
            event_type="job.completed",
            attempt=1,
            outcome=outcome,
        )
        record_delivery(attempt)
    endpoint.refresh_from_db()
    counts = (endpoint.success_count, endpoint.failure_count, endpoint.consecutive_failures)
    assert counts == (1, 2, 0) and WebhookDelivery.objects.count() == 4


async def test_webhook_traceparent_continues_the_jobs_trace(
    queue: RedisStreamsQueue,
    receiver: HTTPServer,
    endpoint: WebhookEndpoint,
    spans: InMemorySpanExporter,
) -> None:
    receiver.expect_request("/hook", method="POST").respond_with_data("")
    job = event(endpoint)
    with trace.get_tracer("tests").start_as_current_span("emit"):
        await queue.enqueue(job, queue_name=WEBHOOKS_QUEUE)
    await deliver(queue, middleware=MiddlewareChain([TracingMiddleware()]))

    (request,) = requests(receiver)
    _, trace_id, parent_id, _ = request.headers["traceparent"].split("-")
    assert trace_id == job_trace_id(job)
    consumer = [s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.CONSUMER]
    assert parent_id in {format(s.context.span_id, "016x") for s in consumer}
