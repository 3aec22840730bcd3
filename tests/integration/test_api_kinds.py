"""REST enqueue of the batch explainability and gauntlet job types."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rest_framework.test import APIClient

from queue_app.queue import Job, create_debate_job, create_redis_queue, get_queue_config
from queue_app.services import jobs
from queue_app.services.bridge import get_bridge
from queue_app.services.scope import Scope
from tests.api_support import JOBS, make_user, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(redis_url: str) -> APIClient:
    """Return a token client of alice (organization acme), with an empty private Redis."""
    return token_client(make_user("alice", "acme"))


def enqueue_debate(owner: str, organization: str) -> str:
    """Enqueue a debate owned by ``owner`` of ``organization``; return its id."""

    async def run() -> str:
        queue = await create_redis_queue(config=get_queue_config())
        try:
            metadata = {"owner": owner, "organization": organization}
            return await queue.enqueue(create_debate_job("Ours?", metadata=metadata))
        finally:
            await queue.close()

    return asyncio.run(run())


def test_batch_job_goes_to_its_queue_for_debates_the_caller_may_see(api: APIClient) -> None:
    alice = make_user("alice-2", "acme")
    mine = enqueue_debate(str(alice.pk), "acme")
    body = {"job_type": "batch_explainability", "payload": {"debate_ids": [mine]}}
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 201, response.json()
    job = response.json()
    assert (job["queue"], job["job_type"]) == ("batch_explainability", "batch_explainability")
    assert job["payload"]["debate_ids"] == [mine]


def test_batch_job_refuses_debates_of_another_organization(api: APIClient) -> None:
    theirs = enqueue_debate("999", "globex")
    body = {"job_type": "batch_explainability", "payload": {"debate_ids": [theirs]}}
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 422  # well-formed, names no debate of the caller
    assert "no debate" in response.json()["payload"]["debate_ids"][0]


def test_batch_job_with_a_thousand_unknown_debates_is_422_not_503(api: APIClient) -> None:
    body = {"job_type": "batch_explainability", "payload": {"debate_ids": ["0"] * 1000}}
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 422, response.json()


def test_gauntlet_job_takes_its_id_and_checks_the_profile(api: APIClient) -> None:
    payload = {"gauntlet_id": "g-rest", "input_content": "Spec text", "agents": ["demo-a"]}
    response = api.post(JOBS, {"job_type": "gauntlet", "payload": payload}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["id"], response.json()["queue"]) == ("g-rest", "gauntlet")
    again = api.post(JOBS, {"job_type": "gauntlet", "payload": payload}, format="json")
    # Well-formed, but the id names an existing job: 422 (schema-valid bodies never get 400).
    assert again.status_code == 422 and "taken" in again.json()["payload"]["gauntlet_id"][0]
    bad = {"input_content": "Spec", "profile": "reckless"}
    response = api.post(JOBS, {"job_type": "gauntlet", "payload": bad}, format="json")
    assert response.status_code == 400 and "profile" in response.json()["payload"]


def test_healing_jobs_are_not_enqueued_through_the_api(api: APIClient) -> None:
    response = api.post(JOBS, {"job_type": "consensus_heal", "payload": {}}, format="json")
    assert response.status_code == 400 and "job_type" in response.json()


def test_gauntlet_id_taken_after_the_check_is_422_and_keeps_the_first_job(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request takes the gauntlet id between this request's check and its enqueue."""
    enqueue_job = jobs.enqueue_job

    def enqueue_after_a_rival(scope: Scope, job: Job, **options: Any) -> tuple[Job, bool]:
        rival = Job(id="g-race", payload={"input_content": "T"}, metadata={"job_type": "gauntlet"})
        get_bridge().enqueuer.enqueue_if_new(rival, 0, "gauntlet")
        return enqueue_job(scope, job, **options)

    monkeypatch.setattr(jobs, "enqueue_job", enqueue_after_a_rival)
    payload = {"gauntlet_id": "g-race", "input_content": "Spec text"}
    response = api.post(JOBS, {"job_type": "gauntlet", "payload": payload}, format="json")
    assert response.status_code == 422
    assert response.json() == {"payload": {"gauntlet_id": ["gauntlet_id 'g-race' is taken"]}}
    clients = get_bridge()
    first = clients.call(clients.tracker.get_job("g-race"))
    assert first is not None and first.payload == {"input_content": "T"}
