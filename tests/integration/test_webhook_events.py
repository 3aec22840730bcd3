"""Job transitions become webhook events, emitted by the ledger writer, once per endpoint."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from werkzeug import Request, Response

from queue_app.models import EVENT_TYPES, SigningSecret, WebhookEndpoint
from queue_app.queue import DebateResult, Job, QueueConfig, RedisStreamsQueue
from queue_app.queue.redis import LedgerReader
from queue_app.stores.ledger_writer import LedgerWriter, store_batch
from queue_app.wiring import build_workers
from tests.integration.conftest import QueueFactory
from tests.queue_ops import take
from workers import WorkerOptions
from workers.webhooks import WEBHOOKS_QUEUE, generate_secret

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = generate_secret()
RESULT = DebateResult(
    debate_id="d-1",
    consensus_reached=True,
    final_answer="yes",
    confidence=0.9,
    rounds_used=2,
    participants=["a", "b"],
    duration_seconds=1.5,
)


class Receiver:
    """Record every POST with its path and the event a Standard Webhooks verifier returns."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.secrets: dict[str, str] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        server.expect_request(re.compile("/.*"), method="POST").respond_with_handler(self.take)

    def take(self, request: Request) -> Response:
        path = request.path
        event = Webhook(self.secrets[path]).verify(request.get_data(), dict(request.headers))
        self.events.append((path, event))
        return Response("ok")

    def seen(self, path: str) -> list[tuple[str, str]]:
        return sorted((e["type"], e["data"]["job_id"]) for p, e in self.events if p == path)


@pytest.fixture
def receiver(settings: SettingsWrapper) -> Iterator[Receiver]:
    """Return a recording receiver on 127.0.0.1 (private targets allowed for the test)."""
    settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE = True
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield Receiver(server)
    server.stop()


async def in_db[R](function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run ``function`` in asgiref's database thread, then close that thread's connection."""

    def run() -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return await sync_to_async(run)()


def endpoint(receiver: Receiver, path: str, events: list[str], **fields: Any) -> None:
    receiver.secrets[path] = SECRET
    fields = {"organization": "acme", **fields}
    WebhookEndpoint.objects.create(
        url=receiver.server.url_for(path), secret=SECRET, event_types=events, **fields
    )


def debate(organization: str = "acme", **payload: Any) -> Job:
    meta = {"job_type": "debate", "organization": organization, "owner": ""}
    return Job(payload={"question": "q", **payload}, metadata=meta)


async def drain(writer: LedgerWriter) -> None:
    while await writer.drain_once():
        pass


async def deliver(config: QueueConfig) -> None:
    """Run the webhook worker as ``queue_worker --queues webhook_delivery --burst`` would."""
    options = WorkerOptions(worker_id="hooks", queues=(WEBHOOKS_QUEUE,), burst=True)
    group = await build_workers(options, config)
    try:
        await asyncio.wait_for(group.start(), 30)
    finally:
        await group.close()


async def poison_pill(make_queue: QueueFactory) -> str:
    """Dead-letter a job the way a worker dying on it would: delivered past max_attempts."""
    crashy, claimer = await make_queue("crashy-0"), await make_queue("crashy-1")
    job_id = await crashy.enqueue(Job(payload={}, max_attempts=1, metadata=debate().metadata))
    assert await crashy.dequeue("crashy-0", timeout_ms=100) is not None
    assert await claimer.claim_stale_jobs(idle_ms=0) == 1
    assert await claimer.dequeue("crashy-1", timeout_ms=100) is None
    return job_id


async def test_job_transitions_reach_the_subscribed_endpoints_of_their_organization(
    queue: RedisStreamsQueue, make_queue: QueueFactory, receiver: Receiver
) -> None:
    await in_db(endpoint, receiver, "/all", list(EVENT_TYPES))
    await in_db(endpoint, receiver, "/failures", ["job.failed", "job.dead_lettered"])
    await in_db(endpoint, receiver, "/globex", list(EVENT_TYPES), organization="globex")
    await in_db(endpoint, receiver, "/off", list(EVENT_TYPES), is_active=False)
    done, failed, cancelled = [await queue.enqueue(debate()) for _ in range(3)]
    await take(queue, 2)
    await queue.complete(done, RESULT.to_dict())
    await queue.fail(failed, "RuntimeError: the agent crashed")
    await queue.cancel(cancelled)
    dead = await poison_pill(make_queue)
    writer = LedgerWriter(queue.redis, config=queue.config, block_ms=10)
    await drain(writer)
    await deliver(queue.config)

    assert receiver.seen("/all") == sorted(
        [
            ("debate.completed", done),
            ("job.cancelled", cancelled),
            ("job.completed", done),
            ("job.dead_lettered", dead),
            ("job.failed", failed),
        ]
    )
    assert receiver.seen("/failures") == sorted(
        [("job.dead_lettered", dead), ("job.failed", failed)]
    )
    assert receiver.seen("/globex") == [] and receiver.seen("/off") == []
    events = {(p, e["type"]): e["data"] for p, e in receiver.events}
    assert events["/all", "debate.completed"] == {"job_id": done, "result": RESULT.to_dict()}
    assert events["/all", "job.completed"]["result"] == RESULT.to_dict()
    assert events["/all", "job.failed"]["error"] == "RuntimeError: the agent crashed"
    # The deliveries' own transitions tell nobody anything.
    before = await queue.get_queue_stats(WEBHOOKS_QUEUE)
    await drain(writer)
    assert await queue.get_queue_stats(WEBHOOKS_QUEUE) == before


async def test_a_batch_read_again_after_a_crash_enqueues_each_event_once(
    queue: RedisStreamsQueue, receiver: Receiver
) -> None:
    await in_db(endpoint, receiver, "/all", ["job.completed"])
    await in_db(endpoint, receiver, "/too", ["job.completed"])
    job_id = await queue.enqueue(debate())
    await take(queue, 1)
    await queue.complete(job_id, {"answer": 42})
    # A writer stores the batch and enqueues its events, then dies before acknowledging it.
    crashed = LedgerReader(queue.redis, "ledger-1", queue.config)
    events = await crashed.read(block_ms=10)
    await queue.enqueue_many(await in_db(store_batch, events), WEBHOOKS_QUEUE)
    # Restarted under the same name, it reads the unacknowledged batch again.
    await drain(LedgerWriter(queue.redis, consumer_name="ledger-1", config=queue.config))

    assert (await queue.get_queue_stats(WEBHOOKS_QUEUE))["pending"] == 2
    assert await LedgerReader(queue.redis, "probe", queue.config).backlog() == 0
    await deliver(queue.config)
    assert receiver.seen("/all") == receiver.seen("/too") == [("job.completed", job_id)]


async def test_jobs_finished_by_one_call_each_reach_the_endpoint(
    queue: RedisStreamsQueue, receiver: Receiver
) -> None:
    """Their events share one ledger entry; each job's delivery has an id of its own."""
    await in_db(endpoint, receiver, "/all", ["job.completed"])
    ids = await queue.enqueue_many([debate() for _ in range(3)])
    started = await take(queue, 3)
    await queue.finish_many(
        [(job.id, job.delivery_token or "", "completed", "1", 0) for job in started]
    )
    assert await queue.redis.xlen(queue.keys.ledger("debates")) == 2  # enqueued, completed
    await drain(LedgerWriter(queue.redis, config=queue.config, block_ms=10))
    await deliver(queue.config)

    assert receiver.seen("/all") == sorted(("job.completed", job_id) for job_id in ids)


async def test_debate_webhook_url_gets_debate_completed_signed_with_its_organizations_secret(
    queue: RedisStreamsQueue, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    site, acme = generate_secret(), generate_secret()
    await in_db(lambda: SigningSecret.objects.create(organization="acme", secret=acme))
    receiver.secrets.update({"/acme": acme, "/globex": site})
    ids = [
        await queue.enqueue(debate("acme", webhook_url=receiver.server.url_for("/acme"))),
        await queue.enqueue(debate("globex", webhook_url=receiver.server.url_for("/globex"))),
    ]
    for job in await take(queue, 2):
        await queue.complete(job.id, RESULT.to_dict())
    writer = LedgerWriter(queue.redis, config=queue.config, block_ms=10)
    await drain(writer)  # globex has no secret, nor has the site yet: not called
    assert "no signing secret for organization 'globex'" in caplog.text
    await in_db(lambda: SigningSecret.objects.create(organization="", secret=site))
    third = await queue.enqueue(debate("globex", webhook_url=receiver.server.url_for("/globex")))
    await take(queue, 1)
    await queue.complete(third, RESULT.to_dict())
    await drain(writer)
    await deliver(queue.config)

    assert receiver.seen("/acme") == [("debate.completed", ids[0])]
    assert receiver.seen("/globex") == [("debate.completed", third)]
    callbacks = await in_db(
        lambda: list(
            WebhookEndpoint.objects.filter(kind="callback").values_list("organization", "url")
        )
    )
    assert sorted(callbacks) == [
        ("acme", receiver.server.url_for("/acme")),
        ("globex", receiver.server.url_for("/globex")),
    ]
