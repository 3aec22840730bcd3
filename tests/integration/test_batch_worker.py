"""The batch explainability kind, built as ``queue_worker --queues batch_explainability`` builds
it, explaining real debates with the agents (demo agents offline, a provider on a local server).
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from pytest_httpserver import HTTPServer

from queue_app.models import JobRecord
from queue_app.queue import JobStatus, QueueConfig, RedisStreamsQueue
from queue_app.stores.ledger_writer import LedgerWriter
from tests.api_support import make_user, token_client
from tests.kinds_support import build_kind, finished_debates, run_kind, wait_for_job
from workers import BatchExplainabilityWorker, BatchJobProgress, create_batch_job
from workers.batch import BATCH_QUEUE, load_batch_progress
from workers.metrics import JOB_STATS

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)


async def test_batch_explains_debates_with_their_agents_and_keeps_partial_results(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    ids = await finished_debates(queue, queue_config, ["Tabs or spaces?", "Is 2 + 2 four?"])
    options = {"include_counterfactuals": True}
    job = await create_batch_job(queue, [ids[0], "no-such-debate", ids[1]], options)
    assert job.metadata["debate_count"] == 3 and job.queue == BATCH_QUEUE
    worker = await run_kind(BATCH_QUEUE, queue_config)
    assert isinstance(worker, BatchExplainabilityWorker)
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done.error
    result = done.result
    assert (result["total"], result["succeeded"], result["failed"]) == (3, 2, 1)
    assert [item["debate_id"] for item in result["results"]] == ids
    explanation = result["results"][0]["explanation"]
    assert explanation["question"] == "Tabs or spaces?"
    assert {factor["agent"] for factor in explanation["key_factors"]} == {"demo-a", "demo-b"}
    assert explanation["counterfactuals"] and explanation["explained_by"] == ["demo-a", "demo-b"]
    [error] = result["errors"]
    assert error["debate_id"] == "no-such-debate" and "JobNotFound" in error["error"]
    assert done.progress["processed"] == 3 and done.progress["completion_percent"] == 100.0
    assert await queue.redis.exists(f"aragora:queue:checkpoints:{job.id}") == 0
    assert worker.get_stats()["debates_processed"] == 2
    assert JOB_STATS.of(BATCH_QUEUE, "batch_explainability").outcomes["completed"] >= 1


async def test_batch_fails_only_when_every_item_failed(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    job = await create_batch_job(queue, ["gone-1", "gone-2"])
    await run_kind(BATCH_QUEUE, queue_config)
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert done.attempts == 1  # unknown debates stay unknown: no retry
    assert "all 2 items failed" in (done.error or "")
    stored = await load_batch_progress(queue, job.id)
    assert stored is not None and (stored.processed, stored.failed) == (2, 2)


async def test_batch_reads_debates_redis_forgot_from_the_ledger(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    [debate_id] = await finished_debates(queue, queue_config, ["Ship on Friday?"])
    while await LedgerWriter(queue.redis, config=queue_config).drain_once():
        pass
    assert await JobRecord.objects.filter(job_id=debate_id).aexists()
    await queue.redis.delete(f"aragora:queue:job:{debate_id}")
    job = await create_batch_job(queue, [debate_id])
    await run_kind(BATCH_QUEUE, queue_config)
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done.error
    assert done.result["results"][0]["explanation"]["question"] == "Ship on Friday?"


@pytest.fixture
def gated_generator(monkeypatch: pytest.MonkeyPatch, settings: SettingsWrapper) -> Any:
    """Install an explain generator that counts its calls and holds ``slow`` until released."""
    module = types.ModuleType("gated_explainers")
    module.calls = Counter()  # type: ignore[attr-defined]
    module.gate = None  # type: ignore[attr-defined]

    async def explain(debate_id: str, options: dict[str, Any]) -> dict[str, Any]:
        module.calls[debate_id] += 1  # type: ignore[attr-defined]
        if debate_id == "slow":
            await module.gate.wait()  # type: ignore[attr-defined]
        return {"summary": f"explained {debate_id}"}

    def make() -> Any:
        module.gate = module.gate or asyncio.Event()  # type: ignore[attr-defined]
        return explain

    module.make = make  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    settings.ARAGORA_EXPLAIN_GENERATOR = "gated_explainers.make"
    return module


async def test_batch_resumes_after_a_crash_without_redoing_finished_items(
    queue: RedisStreamsQueue, queue_config: QueueConfig, gated_generator: Any
) -> None:
    job = await create_batch_job(queue, ["fast-1", "slow", "fast-2"])
    first = await build_kind(BATCH_QUEUE, queue_config, burst=False, shutdown_timeout=0)
    running = asyncio.create_task(first.start())
    stalled = await wait_for_job(queue, job.id, lambda j: (j.progress or {}).get("processed") == 2)
    [worker] = first.workers
    live = worker.get_batch_progress(job.id)
    assert isinstance(live, BatchJobProgress) and live.succeeded == 2
    assert stalled.progress["total"] == 3 and stalled.status is JobStatus.PROCESSING
    first.request_stop()  # no time to finish: the batch is abandoned mid-way, as in a crash
    await running
    await first.close()

    gated_generator.gate.set()
    second = await build_kind(BATCH_QUEUE, queue_config)
    assert await second.workers[0].queue.claim_stale_jobs(0, [BATCH_QUEUE]) == 1
    try:
        await asyncio.wait_for(second.start(), 30)
    finally:
        await second.close()
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2
    assert done.result["succeeded"] == 3
    assert gated_generator.calls == Counter({"fast-1": 1, "fast-2": 1, "slow": 2})


async def test_running_batch_progress_shows_in_the_api_and_admin(
    queue: RedisStreamsQueue, queue_config: QueueConfig, gated_generator: Any
) -> None:
    job = await create_batch_job(queue, ["fast-1", "slow"])
    group = await build_kind(BATCH_QUEUE, queue_config, burst=False)
    running = asyncio.create_task(group.start())
    try:
        await wait_for_job(queue, job.id, lambda j: (j.progress or {}).get("processed") == 1)
        body = await sync_to_async(_api_job)(job.id)
        assert body["progress"]["processed"] == 1 and body["progress"]["total"] == 2
        page = await sync_to_async(_admin_page)(job.id)
        assert "&quot;processed&quot;: 1" in page
    finally:
        gated_generator.gate.set()
        group.request_stop()
        await running
        await group.close()


def _api_job(job_id: str) -> dict[str, Any]:
    client = token_client(make_user("api-staff", staff=True))
    response = client.get(f"/api/queue/jobs/{job_id}/")
    assert response.status_code == 200
    return response.json()


def _admin_page(job_id: str) -> str:
    record = JobRecord.objects.create(job_id=job_id, queue=BATCH_QUEUE, status="processing")
    user = make_user("admin", staff=True)
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    response = client.get(f"/admin/queue_app/jobrecord/{record.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


async def test_explainer_asks_a_provider_over_http(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    settings: SettingsWrapper,
    httpserver: HTTPServer,
) -> None:
    settings.ARAGORA_AGENT_ENV = {
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": httpserver.url_for(""),
    }
    text = "It was close.\nFACTOR: cost\nFACTOR: latency\nDISSENT: none\nCOUNTERFACTUAL: free GPUs"
    answer = {"content": [{"text": text}], "usage": {"input_tokens": 40, "output_tokens": 9}}
    httpserver.expect_request("/v1/messages", method="POST").respond_with_json(answer)
    [debate_id] = await finished_debates(queue, queue_config, ["GPU or CPU?"])
    options = {"include_counterfactuals": True, "agents": ["anthropic-api"]}
    job = await create_batch_job(queue, [debate_id], options)
    await run_kind(BATCH_QUEUE, queue_config)
    done = await queue.get_status(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done.error
    explanation = done.result["results"][0]["explanation"]
    assert [f["factor"] for f in explanation["key_factors"]] == ["cost", "latency"]
    assert explanation["dissent"] == []
    assert explanation["counterfactuals"] == [
        {"agent": "anthropic-api", "counterfactual": "free GPUs"}
    ]
    assert explanation["token_usage"] == {"input": 40, "output": 9}
    [(request, _)] = httpserver.log
    prompt = request.get_json()["messages"][0]["content"]
    assert "Question: GPU or CPU?" in prompt and "COUNTERFACTUAL: <" in prompt
    assert request.headers["x-api-key"] == "sk-ant-test"


async def test_reference_readme_example_runs_as_written(queue: RedisStreamsQueue) -> None:
    async def explain_debate(debate_id: str, options: dict) -> dict:
        return {"debate_id": debate_id, "counterfactuals": options["include_counterfactuals"]}

    worker = BatchExplainabilityWorker(
        queue=queue,
        worker_id="batch-worker-1",
        explain_generator=explain_debate,
        max_concurrent_debates=5,  # Per batch
        max_concurrent_batches=2,
    )
    job = await create_batch_job(
        queue=queue,
        debate_ids=["d1", "d2", "d3"],
        options={"include_counterfactuals": True},
    )
    running = asyncio.create_task(worker.start())
    done = await wait_for_job(queue, job.id, lambda j: j.status.is_terminal)
    await worker.stop()
    await running
    assert done.status is JobStatus.COMPLETED and done.result["succeeded"] == 3
    assert done.result["results"][2]["explanation"] == {"debate_id": "d3", "counterfactuals": True}
    stats = worker.get_stats()
    assert stats["batches_processed"] == 1 and stats["queue_name"] == "batch_explainability"
