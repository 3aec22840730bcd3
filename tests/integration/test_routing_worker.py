"""The routing kind, built as ``queue_worker --queues routing`` builds it, against local servers.

A pytest-httpserver plays Slack, Discord and Teams incoming webhooks and the Telegram Bot API;
an aiosmtpd server receives the email. Each test asserts what the servers received, the job's
outcome in Redis and the delivery log rows.
"""

from __future__ import annotations

import email
import json
import time
from collections.abc import Iterator
from email.message import Message
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from asgiref.sync import sync_to_async
from django.db import connection
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from werkzeug import Request, Response

from queue_app.models import RouteDelivery, WebhookEndpoint, trace_id_of
from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue, create_debate_job
from tests.conftest import free_port
from tests.kinds_support import run_kind
from workers import RoutingWorker, enqueue_routing_job
from workers.routing import ROUTING_QUEUE, recover_interrupted_routing, routing_job_id
from workers.webhooks import WEBHOOKS_QUEUE

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "123456:telegram-secret-token"
RESULT = {
    "debate_id": "",
    "consensus_reached": True,
    "final_answer": "Yes: Redis is a database <with> persistence.",
    "confidence": 0.87,
    "rounds_used": 2,
    "participants": ["demo-a", "demo-b"],
    "duration_seconds": 1.0,
}


@pytest.fixture(autouse=True)
def routing_settings(settings: SettingsWrapper, httpserver: HTTPServer) -> None:
    settings.ARAGORA_ROUTING = {
        **settings.ARAGORA_ROUTING,
        "public_url": "https://aragora.example",
        "telegram_base_url": httpserver.url_for("/").rstrip("/"),
        "telegram_bot_token": TOKEN,
        "allow_private": True,
        "retry_delay_seconds": 0.2,
    }
    settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE = True
    settings.ARAGORA_DEBATE_EXECUTOR = None


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted"


@pytest.fixture
def mailbox(settings: SettingsWrapper) -> Iterator[Mailbox]:
    """Run a local SMTP server and point Django's default mailer at it."""
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": controller.port, "timeout": 5},
        }
    }
    yield handler
    controller.stop()


async def debate_from(queue: RedisStreamsQueue, platform: str, target: str) -> Job:
    job = create_debate_job(
        "Is Redis a database?",
        agents=["demo-a", "demo-b"],
        rounds=2,
        origin={"platform": platform, "target": target},
        metadata={"owner": "7", "organization": "acme"},
    )
    await queue.enqueue(job)
    return job


def deliveries() -> list[tuple[str, str, int | None, int, str]]:
    try:
        rows = RouteDelivery.objects.order_by("pk")
        return [(d.platform, d.outcome, d.status_code, d.attempt, d.target) for d in rows]
    finally:
        connection.close()


def received_json(httpserver: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [json.loads(request.data) for request, _ in httpserver.log if request.path == path]


async def test_finished_debate_is_routed_back_to_its_slack_channel(
    queue: RedisStreamsQueue, queue_config: QueueConfig, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/services/T1/B1/x", method="POST").respond_with_data("ok")
    debate = await debate_from(queue, "slack", httpserver.url_for("/services/T1/B1/x"))
    await run_kind("debates", queue_config)  # the origin middleware enqueues the routing job
    routing = await queue.get_status(routing_job_id(debate.id))
    assert routing is not None and routing.queue == ROUTING_QUEUE
    assert "services" not in json.dumps(routing.payload)  # the webhook URL stays with the debate
    worker = await run_kind(ROUTING_QUEUE, queue_config)
    assert isinstance(worker, RoutingWorker)
    done = await queue.get_status(routing.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done and done.error
    assert done.result["platform"] == "slack" and done.result["status_code"] == 200
    [body] = received_json(httpserver, "/services/T1/B1/x")
    text = json.dumps(body["blocks"])
    assert "Is Redis a database?" in body["text"] and "*Confidence:*" in text
    assert "Consensus reached" in text or "No consensus" in text
    assert f"https://aragora.example/api/queue/jobs/{debate.id}/" in text
    rows = await sync_to_async(deliveries)()
    assert rows == [("slack", "delivered", 200, 1, "localhost")]  # host only, no path


def _telegram(request: Request) -> Response:
    return Response(json.dumps({"ok": True, "result": {"message_id": 1}}), 200)


@pytest.mark.parametrize(
    ("platform", "path"),
    [("discord", "/api/webhooks/1/abc"), ("teams", "/webhookb2/x"), ("telegram", None)],
)
async def test_each_platform_gets_its_own_message_shape(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    httpserver: HTTPServer,
    platform: str,
    path: str | None,
) -> None:
    if path is None:
        path = f"/bot{TOKEN}/sendMessage"
        httpserver.expect_request(path, method="POST").respond_with_handler(_telegram)
        target = "-100123"
    else:
        httpserver.expect_request(path, method="POST").respond_with_data("", status=204)
        target = httpserver.url_for(path)
    debate = await debate_from(queue, platform, target)
    job = await enqueue_routing_job(queue, None, debate.id, {**RESULT, "debate_id": debate.id})
    await run_kind(ROUTING_QUEUE, queue_config)
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done and done.error
    [body] = received_json(httpserver, path)
    if platform == "discord":
        assert body["embeds"][0]["title"] == "Is Redis a database?"
        assert body["embeds"][0]["fields"][1] == {
            "name": "Confidence",
            "value": "87%",
            "inline": True,
        }
    elif platform == "teams":
        card = body["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["actions"][0]["url"].endswith(f"/jobs/{debate.id}/")
    else:
        assert body["chat_id"] == "-100123" and body["parse_mode"] == "HTML"
        assert "&lt;with&gt;" in body["text"]  # escaped for HTML
    [row] = await sync_to_async(deliveries)()
    assert row[:2] == (platform, "delivered") and TOKEN not in row[4]


async def test_failures_are_retried_with_backoff_and_every_attempt_is_recorded(
    queue: RedisStreamsQueue, queue_config: QueueConfig, httpserver: HTTPServer
) -> None:
    arrivals: list[float] = []

    def flaky(request: Request) -> Response:
        arrivals.append(time.monotonic())
        return Response("busy", status=503 if len(arrivals) < 3 else 200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(flaky)
    debate = await debate_from(queue, "slack", httpserver.url_for("/hook"))
    job = await enqueue_routing_job(queue, None, debate.id, RESULT)
    await run_kind(ROUTING_QUEUE, queue_config)
    done = await queue.get_status(job.id)
    assert done is not None and (done.status, done.attempts) == (JobStatus.COMPLETED, 3)
    # The retry delay is 0.2 s, then 0.4 s (±20 %): never at once.
    assert arrivals[1] - arrivals[0] >= 0.15 and arrivals[2] - arrivals[1] >= 0.3
    outcomes = [(row[1], row[2], row[3]) for row in await sync_to_async(deliveries)()]
    assert outcomes == [("retry", 503, 1), ("retry", 503, 2), ("delivered", 200, 3)]


@pytest.mark.parametrize(
    ("origin", "status", "message"),
    [
        ({"platform": "slack", "target": "/hook"}, 404, "refused the result: HTTP 404"),
        ({"platform": "fax", "target": "555"}, 200, "origin platform must be one of"),
        (None, 200, "has no origin"),
    ],
)
async def test_permanent_errors_fail_at_once(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    httpserver: HTTPServer,
    origin: dict[str, str] | None,
    status: int,
    message: str,
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("gone", status=status)
    debate = Job(payload={"question": "q"}, metadata={"job_type": "debate"})
    if origin is not None:
        target = origin["target"]
        url = httpserver.url_for(target) if target.startswith("/") else target
        debate.metadata["origin"] = {**origin, "target": url}
    await queue.enqueue(debate)
    job = await enqueue_routing_job(queue, None, debate.id, RESULT)
    await run_kind(ROUTING_QUEUE, queue_config)
    done = await queue.get_status(job.id)
    assert done is not None and (done.status, done.attempts) == (JobStatus.FAILED, 1)
    assert message in (done.error or "")


async def test_private_targets_are_refused_unless_allowed(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    httpserver: HTTPServer,
    settings: SettingsWrapper,
) -> None:
    settings.ARAGORA_ROUTING = {**settings.ARAGORA_ROUTING, "allow_private": False}
    debate = await debate_from(queue, "slack", httpserver.url_for("/hook"))
    job = await enqueue_routing_job(queue, None, debate.id, RESULT)
    await run_kind(ROUTING_QUEUE, queue_config)
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert "not a public" in (done.error or "") and len(httpserver.log) == 0


async def test_email_is_sent_through_django_to_the_smtp_server(
    queue: RedisStreamsQueue, queue_config: QueueConfig, mailbox: Mailbox
) -> None:
    debate = await debate_from(queue, "email", "asker@example.com")
    by_origin = await enqueue_routing_job(queue, None, debate.id, RESULT)
    by_type = await enqueue_routing_job(
        queue, None, debate.id, RESULT, "routing_email", recipient_email="boss@example.com"
    )
    await run_kind(ROUTING_QUEUE, queue_config)
    for job in (by_origin, by_type):
        done = await queue.get_status(job.id)
        assert done is not None and done.status is JobStatus.COMPLETED, done and done.error
    received = {tuple(rcpt): message for rcpt, message in mailbox.messages}
    assert set(received) == {("asker@example.com",), ("boss@example.com",)}
    message = received[("boss@example.com",)]
    assert message["Subject"].startswith("Aragora debate result: Is Redis a database?")
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in message.walk()}
    assert b"Redis is a database <with> persistence" in parts["text/plain"]
    assert b"&lt;with&gt;" in parts["text/html"]


def _endpoint(url: str) -> int:
    try:
        return WebhookEndpoint.objects.create(
            url=url, secret="s" * 32, event_types=["debate.completed"], organization="acme"
        ).pk
    finally:
        connection.close()


async def test_webhook_origin_goes_through_the_signed_delivery_path(
    queue: RedisStreamsQueue, queue_config: QueueConfig, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/receiver", method="POST").respond_with_data("ok")
    pk = await sync_to_async(_endpoint)(httpserver.url_for("/receiver"))
    debate = await debate_from(queue, "webhook", str(pk))
    job = await enqueue_routing_job(queue, None, debate.id, RESULT)
    await run_kind(ROUTING_QUEUE, queue_config)
    await run_kind(ROUTING_QUEUE, queue_config)  # a rerun routes nothing twice
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert (await queue.get_queue_stats(WEBHOOKS_QUEUE))["pending"] == 1
    await run_kind(WEBHOOKS_QUEUE, queue_config)
    [(request, _)] = httpserver.log
    body = Webhook(("s" * 32).encode()).verify(request.data, dict(request.headers))
    assert body["type"] == "debate.completed" and body["data"]["debate_id"] == debate.id
    assert body["data"]["result"]["confidence"] == 0.87


async def test_recovery_takes_over_only_routing_deliveries(
    make_queue: Any, queue: RedisStreamsQueue
) -> None:
    await enqueue_routing_job(queue, "r-1", "d-1", RESULT)
    await queue.enqueue(Job(payload={}, metadata={"job_type": "noop"}), queue_name="diagnostics")
    dead = await make_queue("dead-1")
    assert len(await dead.dequeue_many("dead-1", 10, 100, [ROUTING_QUEUE, "diagnostics"])) == 2
    rescuer = await make_queue("rescuer")
    assert await recover_interrupted_routing(rescuer, idle_ms=0) == 1
    [job] = await rescuer.dequeue_many("rescuer", 10, 100, [ROUTING_QUEUE])
    assert job.id == "r-1" and job.attempts == 2


async def test_routing_job_continues_the_trace_of_its_debate(
    queue: RedisStreamsQueue, queue_config: QueueConfig, httpserver: HTTPServer, spans: Any
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    debate = await debate_from(queue, "slack", httpserver.url_for("/hook"))
    await run_kind("debates", queue_config)
    routing = await queue.get_status(routing_job_id(debate.id))
    assert routing is not None
    assert trace_id_of(routing) and trace_id_of(routing) == trace_id_of(debate)
