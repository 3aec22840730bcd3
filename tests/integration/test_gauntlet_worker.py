"""The gauntlet kind, built as ``queue_worker --queues gauntlet`` builds it, with demo auditors
and with a provider's wire format served by a local HTTP server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue, create_debate_job
from tests.kinds_support import run_kind
from workers import GauntletWorker, enqueue_gauntlet_job, recover_interrupted_gauntlets
from workers.agents import AgentPool
from workers.gauntlet import GAUNTLET_QUEUE, PROFILES
from workers.metrics import JOB_STATS

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = "Users log in with a password. Sessions never expire. Admins can read every message."


def openai_reply(text: str) -> dict[str, Any]:
    """Return a Chat Completions body whose answer is ``text``."""
    message = {"role": "assistant", "content": text}
    usage = {"prompt_tokens": 50, "completion_tokens": 12}
    return {"choices": [{"index": 0, "message": message}], "usage": usage}


def auditor(request: Request) -> Response:
    """Fail the security probe with a high finding; pass every other probe."""
    prompt = request.get_json()["messages"][1]["content"]
    if "Probe 'security'" in prompt:
        text = (
            "FINDING: sessions never expire, so a stolen cookie works forever\n"
            "FINDING: admins reading messages is an insider risk\n"
            "SEVERITY: high\nVERDICT: fail\nCONFIDENCE: 0.9"
        )
    else:
        text = "FINDING: none\nSEVERITY: info\nVERDICT: pass\nCONFIDENCE: 0.7"
    return Response(json.dumps(openai_reply(text)), content_type="application/json")


@pytest.fixture
def provider(settings: SettingsWrapper) -> Iterator[HTTPServer]:
    """Serve the OpenAI wire format on a threaded local server and point the agents at it."""
    server = HTTPServer(threaded=True)
    server.start()
    settings.ARAGORA_AGENT_ENV = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": server.url_for(""),
    }
    yield server
    server.clear()
    server.stop()


async def test_gauntlet_with_demo_auditors_keeps_verdict_risk_and_findings(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    job = await enqueue_gauntlet_job(
        "g-demo", SPEC, "spec", "a security lead", ["demo-a", "demo-b"], "quick", queue=queue
    )
    assert job.id == "g-demo" and job.queue == GAUNTLET_QUEUE
    await run_kind(GAUNTLET_QUEUE, queue_config)
    done = await queue.get_status("g-demo")
    assert done is not None and done.status is JobStatus.COMPLETED, done.error
    result = done.result
    assert result["gauntlet_id"] == "g-demo" and result["profile"] == "quick"
    assert result["verdict"] in ("pass", "conditional", "fail")
    assert 0.5 <= result["confidence"] < 1.0
    assert [probe["probe"] for probe in result["probes"]] == list(PROFILES["quick"])
    assert all(probe["auditors"] == ["demo-a", "demo-b"] for probe in result["probes"])
    assert result["findings"] and all(f["probe"] in PROFILES["quick"] for f in result["findings"])
    assert result["risk"]["total"] == len(result["findings"])
    assert done.progress == {"probes_done": 3, "probes_total": 3}
    assert JOB_STATS.of(GAUNTLET_QUEUE, "gauntlet").outcomes["completed"] >= 1


async def test_gauntlet_asks_a_provider_and_fails_on_a_high_finding(
    queue: RedisStreamsQueue, queue_config: QueueConfig, provider: HTTPServer
) -> None:
    provider.expect_request("/v1/chat/completions", method="POST").respond_with_handler(auditor)
    await enqueue_gauntlet_job(
        "g-http", SPEC, "policy", "a GDPR auditor", ["openai-api"], "quick", queue=queue
    )
    await run_kind(GAUNTLET_QUEUE, queue_config)
    done = await queue.get_status("g-http")
    assert done is not None and done.status is JobStatus.COMPLETED, done.error
    result = done.result
    assert result["verdict"] == "fail" and result["input_type"] == "policy"
    assert result["risk"]["high"] == 2 and result["risk"]["level"] == "high"
    assert {f["probe"] for f in result["findings"]} == {"security"}
    assert result["findings"][0]["finding"].startswith("sessions never expire")
    assert result["confidence"] == pytest.approx((0.9 + 0.7 + 0.7) / 3, abs=1e-3)
    assert len(provider.log) == 3
    body = provider.log[0][0].get_json()
    assert "auditor: a GDPR auditor" in body["messages"][0]["content"]
    assert SPEC in body["messages"][1]["content"] and "VERDICT: <" in body["messages"][1]["content"]


async def test_gauntlet_duration_is_bounded_and_unfinished_probes_are_reported(
    queue: RedisStreamsQueue, queue_config: QueueConfig, provider: HTTPServer
) -> None:
    def slow_on_edge_cases(request: Request) -> Response:
        if "Probe 'edge_cases'" in request.get_json()["messages"][1]["content"]:
            time.sleep(3)
        return auditor(request)

    provider.expect_request("/v1/chat/completions").respond_with_handler(slow_on_edge_cases)
    job = Job(
        payload={
            "input_content": SPEC,
            "agents": ["openai-api"],
            "profile": "quick",
            "max_duration_seconds": 1,
        },
        metadata={"job_type": "gauntlet"},
    )
    await queue.enqueue(job, queue_name=GAUNTLET_QUEUE)
    started = time.monotonic()
    await run_kind(GAUNTLET_QUEUE, queue_config)
    assert time.monotonic() - started < 2.9
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done.error
    assert done.result["incomplete_probes"] == ["edge_cases"]
    assert [p["probe"] for p in done.result["probes"]] == ["assumptions", "security"]
    assert done.result["verdict"] == "fail"  # the finished security probe still counts


async def test_gauntlet_with_unknown_agent_fails_at_once(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    await enqueue_gauntlet_job("g-bad", SPEC, "code", None, ["robot-9000"], queue=queue)
    await run_kind(GAUNTLET_QUEUE, queue_config)
    done = await queue.get_status("g-bad")
    assert done is not None and done.status is JobStatus.FAILED and done.attempts == 1
    assert "unknown agent 'robot-9000'" in (done.error or "")


async def test_gauntlet_worker_broadcasts_its_events(queue: RedisStreamsQueue) -> None:
    events: list[dict[str, Any]] = []
    worker = GauntletWorker(
        queue, "g-1", broadcast_fn=events.append, agents=AgentPool(), burst=True
    )
    await enqueue_gauntlet_job("g-events", SPEC, "code", None, ["demo-a"], "quick", queue=queue)
    await worker.start()
    kinds = [event["type"] for event in events]
    assert kinds[0] == "gauntlet_started" and kinds[-1] == "gauntlet_completed"
    assert kinds.count("probe_completed") == 3
    assert all(event["gauntlet_id"] == "g-events" for event in events)


async def test_recover_interrupted_gauntlets_takes_over_gauntlets_only(make_queue) -> None:
    dead, live = await make_queue("dead-1"), await make_queue("live-1")
    await enqueue_gauntlet_job("g-stale", SPEC, "spec", None, ["demo-a"], "quick", queue=dead)
    debate_id = await dead.enqueue(create_debate_job("Stale too?", agents=["demo-a"]))
    await dead.dequeue("dead-1", timeout_ms=100, queue_name=GAUNTLET_QUEUE)
    await dead.dequeue("dead-1", timeout_ms=100)
    assert await recover_interrupted_gauntlets(live, idle_ms=0) == 1
    pending = await live.redis.xpending("aragora:queue:debates:stream", "debate-workers")
    assert pending["consumers"] == [{"name": "dead-1", "pending": 1}]
    worker = GauntletWorker(live, "live-1", agents=AgentPool(), burst=True)
    await worker.start()
    done = await live.get_status("g-stale")
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2
    still = await live.get_status(debate_id)
    assert still is not None and still.status is JobStatus.PROCESSING
