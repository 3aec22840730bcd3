"""Job listings of non-staff callers: what they see, and what a listing costs in Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from queue_app.queue import Job, create_redis_queue, get_queue_config
from tests.api_support import JOBS, debate, make_user, token_client
from tests.queue_ops import process_jobs

pytestmark = pytest.mark.django_db

#: Jobs of another organization enqueued before alice lists hers.
OTHERS = 1200


def _enqueue_for(owner: str, organization: str, count: int, queue: str = "debates") -> None:
    async def run() -> None:
        redis_queue = await create_redis_queue(config=get_queue_config())
        try:
            metadata = {"job_type": "debate", "owner": owner, "organization": organization}
            jobs = [Job(payload={"question": "q"}, metadata=dict(metadata)) for _ in range(count)]
            await redis_queue.enqueue_many(jobs, queue)
        finally:
            await redis_queue.close()

    asyncio.run(run())


def _command_calls(redis_url: str) -> dict[str, int]:
    with redis.Redis.from_url(redis_url) as client:
        stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}


def _ids(page: dict[str, Any]) -> list[str]:
    return [job["id"] for job in page["results"]]


def test_api_listing_of_a_member_costs_its_page_not_the_queue(redis_url: str) -> None:
    alice = token_client(make_user("alice", "acme"))
    mine = [alice.post(JOBS, debate(), format="json").json()["id"] for _ in range(3)]
    _enqueue_for("999", "globex", OTHERS)
    assert alice.get(JOBS, {"limit": 1}).status_code == 200  # clients connected, scripts loaded
    with redis.Redis.from_url(redis_url) as client:
        client.config_resetstat()
    page = alice.get(JOBS, {"limit": 2}).json()
    calls = _command_calls(redis_url)
    assert _ids(page) == mine[::-1][:2] and page["next"]
    assert calls.get("hgetall", 0) == 2  # the page, nothing else
    assert calls.get("fcall", 0) == 1  # one walk of alice's indexes on the one queue
    assert sum(calls.values()) < 30, calls
    rest = alice.get(page["next"]).json()
    assert _ids(rest) == [mine[0]] and rest["count"] == 3


def test_api_listing_shows_own_and_organization_jobs_once(redis_url: str) -> None:
    alice, bob = make_user("alice", "acme"), make_user("bob", "acme")
    carol = token_client(make_user("carol", "globex"))
    as_alice, as_bob = token_client(alice), token_client(bob)
    own = as_alice.post(JOBS, debate(), format="json").json()["id"]
    colleague = as_bob.post(JOBS, debate(), format="json").json()["id"]
    other = carol.post(JOBS, debate(), format="json").json()["id"]
    _enqueue_for(str(alice.pk), "", 1, queue="diagnostics")  # hers, from before an organization
    listed = as_alice.get(JOBS).json()
    assert len(listed["results"]) == 3 and listed["count"] == 3
    assert {own, colleague} < set(_ids(listed)) and other not in _ids(listed)
    assert _ids(carol.get(JOBS).json()) == [other]
    assert _ids(as_alice.get(JOBS, {"queue": "debates"}).json()) == [colleague, own]


def test_api_listing_drops_jobs_gone_from_redis_from_the_index(redis_url: str) -> None:
    alice = make_user("alice")
    api = token_client(alice)
    ids = [api.post(JOBS, debate(), format="json").json()["id"] for _ in range(3)]
    index = f"aragora:queue:debates:by:owner:{alice.pk}"
    with redis.Redis.from_url(redis_url) as client:
        assert client.zcard(index) == 3
        client.delete(f"aragora:queue:job:{ids[0]}", f"aragora:queue:job:{ids[1]}")  # expired
        assert _ids(api.get(JOBS).json()) == [ids[2]]
        assert client.zrange(index, 0, -1) == [ids[2].encode()]
        client.delete(f"aragora:queue:job:{ids[2]}")
        api.post(JOBS, debate(), format="json")  # an enqueue drops the oldest gone ids too
        assert client.zcard(index) == 1 and 0 < client.ttl(index) <= 2 * 7 * 86400


def test_api_listing_filters_a_member_listing_by_status(redis_url: str) -> None:
    alice = token_client(make_user("alice", "acme"))
    ids = [alice.post(JOBS, debate(), format="json").json()["id"] for _ in range(4)]
    process_jobs("completed", count=2)
    _enqueue_for("999", "globex", 50)
    completed = alice.get(JOBS, {"status": "completed"}).json()
    assert sorted(_ids(completed)) == sorted(ids[:2]) and completed["count"] == 2
    pending = alice.get(JOBS, {"status": "pending", "limit": 1}).json()
    assert _ids(pending) == [ids[3]] and pending["next"]
    assert _ids(alice.get(pending["next"]).json()) == [ids[2]]
