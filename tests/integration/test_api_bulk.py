"""``POST jobs/bulk/``: many jobs in one request, checked as ``POST jobs/``, all of them or none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import redis
from rest_framework.test import APIClient

from queue_app.api import bulk as bulk_view
from queue_app.queue import Job
from queue_app.services import bulk as bulk_service
from queue_app.services.bridge import get_bridge
from tests.api_support import JOBS, debate, make_user, token_client

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db

BULK = f"{JOBS}bulk/"
P = "aragora:queue:"


@pytest.fixture
def api(redis_url: str) -> APIClient:
    """Return a token client of alice (organization acme), with an empty private Redis."""
    return token_client(make_user("alice", "acme"))


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


def bulk(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": list(jobs)}


def waiting(store: redis.Redis, queue: str = "debates") -> int:
    return int(store.zcard(f"{P}{queue}:idx:pending"))


def ledger_events(store: redis.Redis, queue: str = "debates") -> list[tuple[str, str]]:
    """Return (job id, status) of the queue's ledger events, as the entries name them."""
    events = []
    for _, fields in store.xrange(f"{P}{queue}:ledger"):
        ids = json.loads(fields["job_ids"]) if "job_ids" in fields else [fields["job_id"]]
        events += [(job_id, fields["status"]) for job_id in ids]
    return events


def test_api_bulk_enqueues_every_job_in_order(api: APIClient, store: redis.Redis) -> None:
    questions = [f"Question {i}?" for i in range(3)]
    response = api.post(BULK, bulk(*(debate(q) for q in questions)), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["count"] == 3 and len(set(body["ids"])) == 3
    for job_id, question in zip(body["ids"], questions, strict=True):
        job = api.get(f"{JOBS}{job_id}/").json()
        assert (job["status"], job["queue"], job["payload"]["question"]) == (
            "pending",
            "debates",
            question,
        )
    assert waiting(store) == 3
    assert store.xlen(f"{P}debates:stream") == 3
    # one ledger event per job, as one by one, in one entry (written by one script call)
    assert ledger_events(store) == [(job_id, "pending") for job_id in body["ids"]]
    assert store.xlen(f"{P}debates:ledger") == 1
    assert api.get("/api/queue/stats/").json()["queues"]["debates"]["pending"] == 3


def test_api_bulk_honours_each_jobs_options(
    api: APIClient, store: redis.Redis, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_QUEUES = ["urgent"]
    jobs = [
        debate(queue="urgent", priority=5, max_attempts=2),
        debate(queue="urgent", delay_seconds=60),
    ]
    response = api.post(BULK, bulk(*jobs), format="json")
    assert response.status_code == 201, response.json()
    first, second = (api.get(f"{JOBS}{i}/").json() for i in response.json()["ids"])
    assert (first["queue"], first["priority"], first["max_attempts"]) == ("urgent", 5, 2)
    assert second["priority"] == 0 and second["max_attempts"] == 3
    assert store.zcard(f"{P}urgent:delayed") == 1
    assert store.xlen(f"{P}urgent:stream:p5") == 1 and not store.exists(f"{P}urgent:stream:p0")


def test_api_bulk_refuses_all_for_one_bad_job_naming_its_index_and_field(
    api: APIClient, store: redis.Redis
) -> None:
    jobs = [debate(), debate(question=""), debate(), {"job_type": "debate", "payload": {}}]
    response = api.post(BULK, bulk(*jobs), format="json")
    assert response.status_code == 400
    errors = response.json()["jobs"]
    assert sorted(errors) == ["1", "3"]
    assert "blank" in errors["1"]["payload"]["question"][0]
    assert "required" in errors["3"]["payload"]["question"][0]
    assert waiting(store) == 0 and store.xlen(f"{P}debates:ledger") == 0


@pytest.mark.parametrize(("count", "message"), [(1001, "no more than 1000"), (0, "at least 1")])
def test_api_bulk_refuses_too_many_or_no_jobs(
    api: APIClient, store: redis.Redis, count: int, message: str
) -> None:
    response = api.post(BULK, bulk(*[debate()] * count), format="json")
    assert response.status_code == 400
    assert message in str(response.json()["jobs"])
    assert waiting(store) == 0


def test_api_bulk_refuses_unknown_keys(api: APIClient) -> None:
    response = api.post(BULK, {**bulk(debate()), "queue": "debates"}, format="json")
    assert response.status_code == 400 and response.json() == {"queue": ["Unknown field."]}


def test_api_bulk_jobs_for_two_queues_are_refused_together(
    api: APIClient, store: redis.Redis
) -> None:
    transcription = {"job_type": "transcription", "payload": {"url": "https://example.com/a"}}
    response = api.post(BULK, bulk(debate(), transcription), format="json")
    assert response.status_code == 422
    assert "one queue" in response.json()["detail"]
    assert waiting(store) == 0 and waiting(store, "transcriptions") == 0


def test_api_bulk_past_the_depth_limit_adds_none(
    api: APIClient, store: redis.Redis, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_QUEUE_MAX_DEPTHS = {"debates": 2}
    assert api.post(BULK, bulk(debate()), format="json").status_code == 201
    response = api.post(BULK, bulk(debate(), debate()), format="json")
    assert response.status_code == 429 and response["Retry-After"]
    assert "'debates' is full" in response.json()["detail"]
    assert waiting(store) == 1
    assert api.post(BULK, bulk(debate()), format="json").status_code == 201


def test_api_bulk_jobs_are_scoped_like_single_ones(api: APIClient, redis_url: str) -> None:
    ids = api.post(BULK, bulk(debate(), debate()), format="json").json()["ids"]
    colleague = token_client(make_user("bob", "acme"))
    stranger = token_client(make_user("eve", "umbrella"))
    for job_id in ids:
        assert colleague.get(f"{JOBS}{job_id}/").status_code == 200
        assert stranger.get(f"{JOBS}{job_id}/").status_code == 404
    assert {job["id"] for job in colleague.get(JOBS).json()["results"]} == set(ids)
    assert stranger.get(JOBS).json()["results"] == []


def test_api_bulk_needs_credentials(redis_url: str) -> None:
    assert APIClient().post(BULK, bulk(debate()), format="json").status_code == 401


def test_api_bulk_counts_each_job_against_the_enqueue_rate(
    api: APIClient, store: redis.Redis, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_API_ENQUEUE_RATE = "5/minute"
    assert api.post(BULK, bulk(*[debate()] * 3), format="json").status_code == 201
    throttled = api.post(BULK, bulk(*[debate()] * 3), format="json")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert api.post(BULK, bulk(*[debate()] * 2), format="json").status_code == 201
    assert api.post(JOBS, debate(), format="json").status_code == 429
    assert waiting(store) == 5


def test_api_bulk_refuses_a_taken_or_repeated_gauntlet_id(
    api: APIClient, store: redis.Redis
) -> None:
    gauntlet = {"job_type": "gauntlet", "payload": {"gauntlet_id": "g-1", "input_content": "S"}}
    twice = api.post(BULK, bulk(gauntlet, gauntlet), format="json")
    assert twice.status_code == 422 and "one id" in twice.json()["detail"]
    assert waiting(store, "gauntlet") == 0
    assert api.post(BULK, bulk(gauntlet), format="json").status_code == 201
    taken = api.post(BULK, bulk(gauntlet), format="json")
    assert taken.status_code == 422
    assert "taken" in taken.json()["jobs"]["0"]["payload"]["gauntlet_id"][0]
    assert waiting(store, "gauntlet") == 1


def test_api_bulk_adds_none_when_a_gauntlet_id_is_taken_after_the_check(
    api: APIClient, store: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request takes the gauntlet id between this request's check and its enqueue."""

    def enqueue_after_a_rival(entries: list[bulk_service.BulkEntry]) -> list[Job]:
        rival = Job(id="g-1", payload={"input_content": "T"}, metadata={"job_type": "gauntlet"})
        get_bridge().enqueuer.enqueue_if_new(rival, 0, "gauntlet")
        return bulk_service.enqueue_together(entries)

    monkeypatch.setattr(bulk_view, "enqueue_together", enqueue_after_a_rival)
    gauntlets = [
        {"job_type": "gauntlet", "payload": {"gauntlet_id": name, "input_content": "S"}}
        for name in ("g-0", "g-1", "g-2")
    ]
    response = api.post(BULK, bulk(*gauntlets), format="json")
    assert response.status_code == 422
    assert response.json() == {
        "jobs": {"1": {"payload": {"gauntlet_id": ["gauntlet_id 'g-1' is taken"]}}}
    }
    assert waiting(store, "gauntlet") == 1  # the rival only
    assert not store.exists(f"{P}job:g-0") and not store.exists(f"{P}job:g-2")
    assert store.hget(f"{P}job:g-1", "payload") == '{"input_content":"T"}'
    assert store.xlen(f"{P}gauntlet:ledger") == 1


def test_enqueue_together_adds_none_when_an_id_is_known(store: redis.Redis) -> None:
    enqueuer = get_bridge().enqueuer
    assert enqueuer.enqueue_if_new(Job(id="known", payload={}), 0, "debates")
    jobs = [Job(id="new-1", payload={}), Job(id="known", payload={}), Job(id="new-2", payload={})]
    assert enqueuer.enqueue_together(jobs, "debates", [0, 0, 60]) == [True, False, True]
    assert waiting(store) == 1 and store.xlen(f"{P}debates:stream") == 1
    assert store.zcard(f"{P}debates:delayed") == 0
    assert not store.exists(f"{P}job:new-1") and not store.exists(f"{P}job:new-2")
    twice = [Job(id="new-1", payload={}), Job(id="new-1", payload={})]
    assert enqueuer.enqueue_together(twice, "debates", [0, 0]) == [True, False]
    assert not store.exists(f"{P}job:new-1")
    assert enqueuer.enqueue_together(jobs[:1], "debates", [0]) == [True]
    assert waiting(store) == 2
