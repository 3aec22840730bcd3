"""Idempotency-Key under concurrency: one request creates the job, the others see that job."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from queue_app.queue import Job
from tests.api_support import JOBS, debate, make_user, token_client

#: Concurrent requests per key, and keys tried.
CLIENTS = 4
ROUNDS = 15


def _post_together(user: User, key: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """POST ``bodies`` at once from threads (authenticated without the database: threads of a
    test cannot share its transaction)."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> Any:
        client = APIClient()
        client.force_authenticate(user)
        barrier.wait()
        return client.post(JOBS, body, format="json", HTTP_IDEMPOTENCY_KEY=key)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


@pytest.mark.django_db
def test_api_idempotency_concurrent_requests_create_one_job_and_return_it(
    redis_url: str,
) -> None:
    user = make_user("alice", "acme")
    assert user.queue_membership.organization == "acme"  # loaded now, read by the threads
    reader = token_client(user)
    for round_ in range(ROUNDS):
        bodies = [debate(f"Question {round_}-{i % 2}?") for i in range(CLIENTS)]
        responses = _post_together(user, f"key-{round_}", bodies)
        created = [(r, b) for r, b in zip(responses, bodies, strict=True) if r.status_code == 201]
        assert len(created) == 1, [r.status_code for r in responses]
        [(winner, winner_body)] = created
        stored = reader.get(f"{JOBS}{winner.json()['id']}/").json()
        assert stored["payload"] == winner.json()["payload"]
        assert stored["payload"]["question"] == winner_body["payload"]["question"]
        for response, body in zip(responses, bodies, strict=True):
            if response is winner:
                continue
            if body == winner_body:
                assert response.status_code == 200, response.json()
                assert response["Idempotent-Replayed"] == "true"
                assert response.json()["id"] == stored["id"]
                assert response.json()["payload"] == stored["payload"]
            else:
                assert response.status_code == 422, response.json()
    stats = reader.get("/api/queue/stats/").json()["queues"]["debates"]
    assert stats["pending"] == ROUNDS


async def test_queue_enqueue_if_new_adds_a_job_id_once(make_queue: Any) -> None:
    queues = [await make_queue(f"producer-{i}") for i in range(CLIENTS)]
    jobs = [Job(payload={"n": i}, id="same-id") for i in range(CLIENTS)]
    added = await asyncio.gather(*(q.enqueue_if_new(j) for q, j in zip(queues, jobs, strict=True)))
    assert sorted(added) == [False] * (CLIENTS - 1) + [True]
    stored = await queues[0].get_status("same-id")
    assert stored is not None and stored.payload == jobs[added.index(True)].payload
    assert (await queues[0].get_queue_stats())["pending"] == 1
