"""Contract of the jobs API: enqueue, status, cancel, retry, list, stats, workers."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import pytest
from rest_framework.test import APIClient

from queue_app.models import JobRecord
from queue_app.queue import create_redis_queue, get_queue_config
from queue_app.queue.redis import WorkerRegistry
from tests.api_support import JOBS, debate, make_user, token_client
from tests.queue_ops import process_jobs

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(redis_url: str) -> APIClient:
    """Return a token client of alice (organization acme), with an empty private Redis."""
    return token_client(make_user("alice", "acme"))


def enqueue(api: APIClient, **body: Any) -> dict[str, Any]:
    response = api.post(JOBS, debate(**body), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_api_enqueue_answers_201_with_the_pending_job(api: APIClient) -> None:
    response = api.post(JOBS, debate(), format="json")
    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "pending" and job["job_type"] == "debate"
    assert job["queue"] == "debates" and job["attempts"] == 0 and job["max_attempts"] == 3
    assert job["payload"]["question"] == "Is Redis a database?"
    assert job["payload"]["consensus"] == "majority"  # defaults filled in by DebateJobPayload
    assert response["Location"] == f"http://testserver{JOBS}{job['id']}/"
    fetched = api.get(f"{JOBS}{job['id']}/").json()
    assert fetched["id"] == job["id"] and fetched["status"] == "pending"
    assert fetched["created_at"].endswith("Z") and fetched["completed_at"] is None


def test_api_enqueue_honours_queue_priority_delay_and_attempts(
    api: APIClient, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_QUEUES = ["urgent"]
    job = enqueue(api, queue="urgent", priority=5, delay_seconds=60, max_attempts=2)
    assert (job["queue"], job["priority"], job["max_attempts"]) == ("urgent", 5, 2)
    stats = api.get("/api/queue/stats/").json()["queues"]
    assert stats["urgent"]["delayed"] == 1 and stats["urgent"]["pending"] == 1
    assert stats["debates"]["pending"] == 0


def _debate_payload(**payload: Any) -> dict[str, Any]:
    return {"job_type": "debate", "payload": {"question": "q", **payload}}


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"payload": {"question": "q"}}, ["job_type"], "required"),
        ({"job_type": "transcode", "payload": {}}, ["job_type"], "Unknown job type 'transcode'"),
        ({"job_type": "debate"}, ["payload"], "required"),
        ({"job_type": "debate", "payload": [1]}, ["payload"], "dictionary"),
        (debate(question=""), ["payload", "question"], "blank"),
        ({"job_type": "debate", "payload": {"rounds": 2}}, ["payload", "question"], "required"),
        (_debate_payload(rounds=0), ["payload", "rounds"], "between 1 and 20"),
        (_debate_payload(rounds=10**9), ["payload", "rounds"], "between 1 and 20"),
        (_debate_payload(agents=["demo"] * 11), ["payload", "agents"], "at most 10 agents"),
        (_debate_payload(question="q" * 10_001), ["payload", "question"], "10000 characters"),
        (_debate_payload(rounds="many"), ["payload", "rounds"], "valid integer"),
        (_debate_payload(consensus="coin"), ["payload", "consensus"], "not a valid choice"),
        (_debate_payload(agents="gpt"), ["payload", "agents"], "list"),
        (_debate_payload(timeout_seconds=0), ["payload", "timeout_seconds"], "greater than or"),
        (_debate_payload(webhook_url="http://10.0.0.8/"), ["payload", "webhook_url"], "public"),
        (_debate_payload(colour=1), ["payload", "colour"], "Unknown field"),
        (_debate_payload(user_id="9"), ["payload", "user_id"], "Unknown field"),
        (debate(colour="red"), ["colour"], "Unknown field"),
        (debate(priority=1000), ["priority"], "less than or equal to 100"),
        (debate(delay_seconds=-1), ["delay_seconds"], "greater than or equal to 0"),
        (debate(delay_seconds=30 * 86400), ["delay_seconds"], "job TTL"),
        (debate(max_attempts=0), ["max_attempts"], "greater than or equal to 1"),
        (debate(queue="no spaces!"), ["queue"], "Unknown queue 'no spaces!'"),
    ],
)
def test_api_enqueue_rejects_invalid_input_naming_the_field(
    api: APIClient, body: dict[str, Any], path: list[str], message: str
) -> None:
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 400
    error: Any = response.json()
    for key in path:
        error = error[key]
    assert message in error[0]
    assert api.get("/api/queue/stats/").json()["queues"]["debates"]["pending"] == 0


def test_api_enqueue_rejects_malformed_json(api: APIClient) -> None:
    response = api.post(JOBS, b'{"job_type": ', content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_api_enqueue_answers_413_for_oversized_bodies(
    api: APIClient, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_API_MAX_BODY_BYTES = 1024
    response = api.post(JOBS, debate(question="x" * 2000), format="json")
    assert response.status_code == 413 and "1024 bytes" in response.json()["detail"]
    assert api.post(JOBS, debate(question="x" * 500), format="json").status_code == 201


def test_api_enqueue_default_limit_is_256_kib(api: APIClient) -> None:
    response = api.post(JOBS, debate(question="x" * 300_000), format="json")
    assert response.status_code == 413


def test_api_idempotency_key_returns_the_first_job(api: APIClient) -> None:
    first = api.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    again = api.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert first.status_code == 201 and again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = api.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="order-18")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    bob = token_client(make_user("bob", "acme"))
    same_key_other_user = bob.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert same_key_other_user.status_code == 201
    assert same_key_other_user.json()["id"] != first.json()["id"]
    assert api.get("/api/queue/stats/").json()["queues"]["debates"]["pending"] == 3


def test_api_idempotency_key_survives_the_first_job_finishing(api: APIClient) -> None:
    first = api.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="k1").json()
    process_jobs("completed")
    again = api.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 200 and again.json()["status"] == "completed"
    assert again.json()["id"] == first["id"]


def test_api_idempotency_key_reused_for_another_request_is_422(api: APIClient) -> None:
    api.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = api.post(JOBS, debate("Another question?"), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 422 and "Idempotency-Key" in response.json()["detail"]


def test_api_idempotency_key_must_be_printable(api: APIClient) -> None:
    response = api.post(JOBS, debate(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()


def test_api_get_job_shows_result_and_failure(api: APIClient) -> None:
    done = enqueue(api)["id"]
    process_jobs("completed")
    failed = enqueue(api, max_attempts=1)["id"]
    process_jobs("failed")
    job = api.get(f"{JOBS}{done}/").json()
    assert job["status"] == "completed" and job["result"] == {"answer": 42}
    assert job["attempts"] == 1 and job["completed_at"] and job["error"] is None
    assert job["worker_id"] == "test-worker" and "progress" in job
    job = api.get(f"{JOBS}{failed}/").json()
    assert job["status"] == "failed" and job["error"] == "boom: the agent crashed"


def test_api_get_unknown_job_is_404(api: APIClient) -> None:
    response = api.get(f"{JOBS}no-such-job/")
    assert response.status_code == 404 and response.json() == {"detail": "no job no-such-job"}


def test_api_cancel_pending_job_then_409(api: APIClient) -> None:
    job_id = enqueue(api)["id"]
    response = api.post(f"{JOBS}{job_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = api.post(f"{JOBS}{job_id}/cancel/")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]
    assert api.post(f"{JOBS}nope/cancel/").status_code == 404


def test_api_retry_failed_job_runs_it_again_and_records_it(api: APIClient) -> None:
    job_id = enqueue(api, max_attempts=1)["id"]
    process_jobs("failed")
    response = api.post(f"{JOBS}{job_id}/retry/")
    assert response.status_code == 200
    assert response.json()["status"] == "pending" and response.json()["attempts"] == 0
    assert JobRecord.objects.get(job_id=job_id).manual_retries == 1
    assert process_jobs("completed") == [job_id]
    assert api.get(f"{JOBS}{job_id}/").json()["status"] == "completed"


def test_api_retry_of_unfinished_job_is_409(api: APIClient) -> None:
    job_id = enqueue(api)["id"]
    response = api.post(f"{JOBS}{job_id}/retry/")
    assert response.status_code == 409 and "pending" in response.json()["detail"]
    assert api.post(f"{JOBS}nope/retry/").status_code == 404


def test_api_list_filters_and_paginates(api: APIClient, settings: SettingsWrapper) -> None:
    settings.ARAGORA_QUEUES = ["other"]
    ids = [enqueue(api)["id"] for _ in range(3)]
    enqueue(api, queue="other")
    process_jobs("completed", count=1)
    page = api.get(JOBS, {"queue": "debates", "limit": 2}).json()
    # A member's count is known once its listing reaches the end of its jobs.
    assert page["count"] is None and len(page["results"]) == 2 and page["previous"] is None
    assert "offset=2" in page["next"]
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None and rest["previous"]
    assert rest["count"] == 3
    listed = [job["id"] for job in page["results"] + rest["results"]]
    assert sorted(listed) == sorted(ids)
    completed = api.get(JOBS, {"status": "completed"}).json()
    assert [job["id"] for job in completed["results"]] == [ids[0]]
    assert api.get(JOBS).json()["count"] == 4


@pytest.mark.parametrize(
    ("query", "field"), [({"status": "done"}, "status"), ({"limit": 0}, "limit")]
)
def test_api_list_rejects_bad_filters(api: APIClient, query: dict[str, Any], field: str) -> None:
    response = api.get(JOBS, query)
    assert response.status_code == 400 and field in response.json()


def test_api_stats_and_workers(api: APIClient) -> None:
    enqueue(api)
    asyncio.run(_register_worker())
    stats = api.get("/api/queue/stats/").json()["queues"]["debates"]
    assert stats["pending"] == 1 and stats["stream_length"] == 1 and stats["dead_letters"] == 0
    [worker] = api.get("/api/queue/workers/").json()["workers"]
    assert worker["worker_id"] == "w-9" and worker["heartbeat_age_seconds"] < 5


async def _register_worker() -> None:
    queue = await create_redis_queue(config=get_queue_config())
    try:
        registry = WorkerRegistry(queue.redis, queue.config)
        await registry.register({"worker_id": "w-9", "queues": ["debates"], "pid": 1}, 30)
    finally:
        await queue.close()


def test_api_answers_503_when_redis_is_down(api: APIClient, settings: SettingsWrapper) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    response = api.get(f"{JOBS}some-id/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "Redis" in response.json()["detail"]


def test_api_get_job_shows_progress_of_a_running_job(api: APIClient) -> None:
    job_id = enqueue(api)["id"]

    async def start_and_report() -> None:
        queue = await create_redis_queue(config=get_queue_config(), consumer_name="reporter")
        try:
            [job] = await queue.dequeue_many("reporter", 1, timeout_ms=1000)
            assert await queue.set_progress(job.id, {"round": 2, "of": 3})
        finally:
            await queue.close()

    asyncio.run(start_and_report())
    job = api.get(f"{JOBS}{job_id}/").json()
    assert job["status"] == "processing" and job["progress"] == {"round": 2, "of": 3}
