"""Consensus healing, built as ``queue_worker --queues consensus_healing`` builds it: real
debates (demo agents, or providers on a local server) are scanned from the ledger and healed
by re-running them through the queue, by webhook events and by archiving."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from queue_app.models import HealingRecord, JobRecord, WebhookEndpoint
from queue_app.queue import JobStatus, QueueConfig, RedisStreamsQueue, create_debate_job
from queue_app.stores.ledger_writer import LedgerWriter
from tests.kinds_support import build_kind, finished_debates, run_kind
from workers import (
    ConsensusHealingWorker,
    HealingAction,
    get_consensus_healing_worker,
    start_consensus_healing,
    stop_consensus_healing,
)
from workers.agents import DemoAgent
from workers.healing import HEALING_QUEUE, heal_job_id
from workers.metrics import REGISTRY
from workers.webhooks import WEBHOOKS_QUEUE

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def heal_at_once(settings: SettingsWrapper) -> None:
    """Heal debates as soon as they finished (no minimum age), automatic re-debates on."""
    settings.ARAGORA_HEALING_ENV = {
        "ARAGORA_HEALING_MIN_AGE": "0",
        "ARAGORA_HEALING_AUTO_REDEBATE": "true",
        "ARAGORA_HEALING_MEDIATOR": "demo-mediator",
    }


async def drain_ledger(queue: RedisStreamsQueue, config: QueueConfig) -> None:
    """Store every job event waiting in Redis as ledger rows."""
    while await LedgerWriter(queue.redis, config=config).drain_once():
        pass


async def split_question(agents: list[str], prefix: str) -> str:
    """Return a question on which the demo agents' opening answers differ."""
    for index in range(200):
        question = f"{prefix} {index}?"
        openings = {(await DemoAgent(name).respond(question, [], 1)).answer for name in agents}
        if len(openings) > 1:
            return question
    raise AssertionError("no split question found")


def records(root: str) -> list[HealingRecord]:
    return list(HealingRecord.objects.filter(root_debate_id=root).order_by("attempt"))


async def test_healing_reruns_a_debate_until_it_archives_it(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    question = await split_question(["demo-a", "demo-b"], "Adopt proposal")
    [root] = await finished_debates(queue, queue_config, [question], rounds=1)
    await drain_ledger(queue, queue_config)
    latest = root
    for attempt in (1, 2):
        await run_kind(HEALING_QUEUE, queue_config)
        [*_, record] = await sync_to_async(records)(root)
        assert (record.attempt, record.debate_id, record.success) == (attempt, latest, True)
        assert record.action in (HealingAction.RE_DEBATE, HealingAction.EXTEND_ROUNDS)
        replacement = await queue.get_status(record.new_debate_id)
        assert replacement is not None and replacement.metadata["healing_of"] == latest
        assert replacement.queue == "debates" and replacement.metadata["healing_root"] == root
        await run_kind("debates", queue_config)  # the re-run really runs, and still disagrees
        done = await queue.get_status(record.new_debate_id)
        assert done is not None and done.status is JobStatus.COMPLETED
        assert done.result["consensus_reached"] is False
        await drain_ledger(queue, queue_config)
        latest = record.new_debate_id
    worker = await run_kind(HEALING_QUEUE, queue_config)
    assert isinstance(worker, ConsensusHealingWorker)
    [*_, last] = await sync_to_async(records)(root)
    assert (last.attempt, last.action, last.debate_id) == (3, "archive", latest)
    archived = await JobRecord.objects.aget(job_id=latest)
    assert archived.archived_at is not None
    await run_kind(HEALING_QUEUE, queue_config)  # the chain used its three attempts
    assert len(await sync_to_async(records)(root)) == 3
    assert worker.get_metrics()["healings_attempted"] == 1
    labels = {"reason": last.reason, "action": "archive", "outcome": "succeeded"}
    assert REGISTRY.get_sample_value("aragora_queue_healings_total", labels) >= 1


def _subscribed_endpoint(url: str) -> str:
    owner = User.objects.create_user("owner")
    WebhookEndpoint.objects.create(
        url=url, secret="s" * 32, organization="acme", event_types=["debate.healing_needed"]
    )
    return str(owner.pk)


async def test_failed_debate_notifies_its_organizations_webhooks(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    settings: SettingsWrapper,
    httpserver: HTTPServer,
) -> None:
    settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE = True
    settings.ARAGORA_AGENT_ENV = {}
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    owner = await sync_to_async(_subscribed_endpoint)(httpserver.url_for("/hook"))
    metadata = {"owner": owner, "organization": "acme"}
    job = create_debate_job("Keys?", agents=["anthropic-api"], metadata=metadata)
    await queue.enqueue(job)
    await run_kind("debates", queue_config)  # no API key: fails at once, for good
    await drain_ledger(queue, queue_config)
    await run_kind(HEALING_QUEUE, queue_config)
    [record] = await sync_to_async(records)(job.id)
    assert (record.reason, record.action, record.success) == ("error", "notify_user", True)
    assert record.message == "debate.healing_needed sent to 1 endpoint(s)"
    await run_kind(WEBHOOKS_QUEUE, queue_config)
    [(request, _)] = httpserver.log
    body = json.loads(request.get_data())
    event = json.dumps(body)
    assert "debate.healing_needed" in event and job.id in event and "ANTHROPIC_API_KEY" in event


async def test_one_scanner_at_a_time_and_one_heal_job_per_scan_result(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    question = await split_question(["demo-a", "demo-b"], "Lease")
    [root] = await finished_debates(queue, queue_config, [question], rounds=1)
    await drain_ledger(queue, queue_config)
    first = await build_kind(HEALING_QUEUE, queue_config, worker_id="healer-1")
    second = await build_kind(HEALING_QUEUE, queue_config, worker_id="healer-2")
    try:
        [one], [two] = first.workers, second.workers
        assert isinstance(one, ConsensusHealingWorker) and isinstance(two, ConsensusHealingWorker)
        assert await one.scan_once() == 1
        assert await two.scan_once() == 0 and not two.holds_lease
        assert await one.scan_once() == 1  # the same scan result: the same heal job
        stats = await queue.get_queue_stats(HEALING_QUEUE)
        assert stats["pending"] == 1
        assert await queue.get_status(heal_job_id(root, 1)) is not None
    finally:
        await first.close()
        await second.close()


async def test_a_heal_job_run_again_after_a_crash_acts_and_records_once(
    queue: RedisStreamsQueue, queue_config: QueueConfig, make_queue: Any
) -> None:
    question = await split_question(["demo-a", "demo-b"], "Twice")
    [root] = await finished_debates(queue, queue_config, [question], rounds=1)
    await drain_ledger(queue, queue_config)
    group = await build_kind(HEALING_QUEUE, queue_config)
    [worker] = group.workers
    assert isinstance(worker, ConsensusHealingWorker)
    try:
        assert await worker.scan_once() == 1
        dead = await make_queue("dead-1")
        job = await dead.dequeue("dead-1", timeout_ms=100, queue_name=HEALING_QUEUE)
        assert job is not None
        await worker.heal(job)  # acted and recorded; then its worker died before the ack
        assert await worker.queue.claim_stale_jobs(0, [HEALING_QUEUE]) == 1
        await asyncio.wait_for(group.start(), 30)
    finally:
        await group.close()
    again = await queue.get_status(heal_job_id(root, 1))
    assert again is not None and (again.status, again.attempts) == (JobStatus.COMPLETED, 2)
    assert len(await sync_to_async(records)(root)) == 1
    assert (await queue.get_queue_stats("debates"))["pending"] == 1
    assert worker.get_metrics()["healings_attempted"] == 1  # counted once, by the first run


def provider(request: Request) -> Response:
    """Anthropic says yes then no; OpenAI says yes then maybe: agreement falls round by round."""
    body = request.get_json()
    prompt = json.dumps(body)
    second = "This is round 2." in prompt
    if request.path == "/v1/messages":
        answer = "no" if second else "yes"
        data = {"content": [{"text": f"ANSWER: {answer}\nCONFIDENCE: 0.8"}]}
        data["usage"] = {"input_tokens": 5, "output_tokens": 5}
    else:
        answer = "maybe" if second else "yes"
        message = {"content": f"ANSWER: {answer}\nCONFIDENCE: 0.8"}
        data = {"choices": [{"message": message}]}
        data["usage"] = {"prompt_tokens": 5, "completion_tokens": 5}
    return Response(json.dumps(data), content_type="application/json")


async def test_a_diverging_debate_is_rerun_with_a_mediator_as_judge(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    settings: SettingsWrapper,
    httpserver: HTTPServer,
) -> None:
    base = httpserver.url_for("")
    settings.ARAGORA_AGENT_ENV = {
        "ANTHROPIC_API_KEY": "sk-a",
        "ANTHROPIC_BASE_URL": base,
        "OPENAI_API_KEY": "sk-o",
        "OPENAI_BASE_URL": base,
    }
    httpserver.expect_request("/v1/messages").respond_with_handler(provider)
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(provider)
    question = await _question_demo_answers("no")
    agents = ["anthropic-api", "openai-api", "demo-x"]
    [root] = await finished_debates(
        queue, queue_config, [question], agents=agents, rounds=2, consensus="unanimous"
    )
    diverged = await queue.get_status(root)
    assert diverged is not None and diverged.progress["agreement"] == [0.6667, 0.3333]
    await drain_ledger(queue, queue_config)
    await run_kind(HEALING_QUEUE, queue_config)
    [record] = await sync_to_async(records)(root)
    assert (record.reason, record.action) == ("diverging", "add_mediator")
    mediated = await queue.get_status(record.new_debate_id)
    assert mediated is not None and mediated.payload["judge"] == "demo-mediator"
    assert mediated.payload["agents"] == [*agents, "demo-mediator"]
    assert mediated.payload["consensus"] == "judge"
    await run_kind("debates", queue_config)
    done = await queue.get_status(record.new_debate_id)
    assert done is not None and done.status is JobStatus.COMPLETED, done.error


async def _question_demo_answers(answer: str) -> str:
    for index in range(200):
        question = f"Diverge {index}?"
        if (await DemoAgent("demo-x").respond(question, [], 1)).answer == answer:
            return question
    raise AssertionError("no question found")


async def test_process_wide_healing_worker_starts_and_stops(redis_url: str) -> Any:
    worker = get_consensus_healing_worker()
    assert get_consensus_healing_worker() is worker
    started = await start_consensus_healing()
    assert started is worker
    await _wait_running(worker)
    status = worker.get_status()
    assert status["running"] and status["config"]["max_healing_attempts"] == 3
    await stop_consensus_healing()
    assert not worker.is_running
    assert get_consensus_healing_worker() is not worker
    await stop_consensus_healing()  # forget the new one too


async def _wait_running(worker: ConsensusHealingWorker) -> None:
    for _ in range(100):
        if worker.is_running:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the healing worker did not start")
