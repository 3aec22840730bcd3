"""Enqueues confirmed by replicas (``enqueue_replicas``: WAIT after the enqueue script).

Against a private master with one real replica: acknowledged jobs are on the replica; asking
for more replicas than there are refuses the enqueue (``EnqueueNotReplicated``: library,
REST 503, django.tasks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import redis
from django.tasks import task

from queue_app.queue import (
    EnqueueNotReplicated,
    Job,
    QueueConfig,
    QueueConnectionError,
    QueueFull,
    RedisStreamsQueue,
)
from tests.api_support import JOBS, debate, make_user, token_client
from tests.process_support import wait_for
from tests.sentinel_support import ask

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

    from tests.conftest import RedisServer
    from tests.round_trips import RoundTrips

JOB_KEY = "aragora:queue:job:"


def confirms(port: int) -> bool:
    """Tell whether the replica confirms a write to the master at ``port`` (a fresh replica's
    first confirmation can take a second)."""
    with redis.Redis(port=port) as client:
        client.set("aragora:test:probe", 1)
        return bool(client.wait(1, 1000) == 1)


@pytest.fixture
def master(redis_server_factory: Callable[..., RedisServer]) -> Iterator[RedisServer]:
    """Return a private master with one replica attached and in sync."""
    primary, replica = redis_server_factory(), redis_server_factory()
    ask(primary.port, "CONFIG", "SET", "repl-diskless-sync-delay", "0")
    ask(replica.port, "REPLICAOF", "127.0.0.1", primary.port)
    wait_for(lambda: confirms(primary.port), 10, "the replica to sync and confirm writes")
    primary.replica_port = replica.port  # type: ignore[attr-defined]
    yield primary


@pytest.fixture
async def confirmed(master: RedisServer) -> AsyncIterator[RedisStreamsQueue]:
    """Return a queue on ``master`` whose enqueues one replica must confirm."""
    config = QueueConfig(redis_url=master.url, enqueue_replicas=1, enqueue_wait_ms=1000)
    queue = RedisStreamsQueue.from_config(config, "producer")
    yield queue
    await queue.close()


def on_replica(master: RedisServer, ids: list[str]) -> int:
    with redis.Redis(port=master.replica_port) as replica:  # type: ignore[attr-defined]
        return sum(replica.exists(JOB_KEY + job_id) for job_id in ids)


async def test_confirmed_enqueues_are_on_the_replica_when_acknowledged(
    confirmed: RedisStreamsQueue, master: RedisServer, round_trips: RoundTrips
) -> None:
    await confirmed.enqueue(Job(payload={}))  # creates the queue, loads the script
    round_trips.reset()
    one = await confirmed.enqueue(Job(payload={}))
    assert round_trips.count == 1, "WAIT rides in the enqueue script's round trip"
    assert on_replica(master, [one]) == 1
    many = await confirmed.enqueue_many([Job(payload={"i": i}) for i in range(1200)])
    assert on_replica(master, many) == 1200  # three script calls and one WAIT


async def test_enqueue_is_refused_when_too_few_replicas_confirm(master: RedisServer) -> None:
    config = QueueConfig(redis_url=master.url, enqueue_replicas=2, enqueue_wait_ms=50)
    queue = RedisStreamsQueue.from_config(config, "producer")
    job = Job(payload={})
    try:
        with pytest.raises(EnqueueNotReplicated, match="of 2 replicas confirmed it within 50 ms"):
            await queue.enqueue(job)
        with pytest.raises(QueueConnectionError):  # what callers of an outage already catch
            await queue.enqueue_many([Job(payload={}) for _ in range(600)])
        # Not acknowledged, yet written: enqueueing it again (same id) adds nothing.
        assert (await queue.get_queue_stats())["pending"] == 601
        with pytest.raises(EnqueueNotReplicated):
            await queue.enqueue(job)
        assert (await queue.get_queue_stats())["pending"] == 601
    finally:
        await queue.close()


async def test_confirmed_enqueue_reloads_a_lost_script_and_reports_a_full_queue(
    confirmed: RedisStreamsQueue, master: RedisServer
) -> None:
    ask(master.port, "SCRIPT", "FLUSH")
    assert on_replica(master, [await confirmed.enqueue(Job(payload={}))]) == 1
    full = dataclasses.replace(confirmed.config, max_depth=1)
    limited = RedisStreamsQueue(confirmed.redis, "producer", full)
    with pytest.raises(QueueFull):
        await limited.enqueue(Job(payload={}))


@pytest.mark.django_db
def test_api_answers_503_when_replicas_do_not_confirm(
    settings: SettingsWrapper, redis_url: str
) -> None:
    settings.ARAGORA_QUEUE = {**settings.ARAGORA_QUEUE, "enqueue_replicas": "1"}
    response = token_client(make_user("alice", "acme")).post(JOBS, debate(), format="json")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "detail": "enqueue not acknowledged: 0 of 1 replicas confirmed it within 100 ms"
    }


@task()
def replicated_task() -> None:
    """A task to enqueue (never run here)."""


@pytest.mark.django_db
def test_tasks_backend_raises_when_replicas_do_not_confirm(
    settings: SettingsWrapper, redis_url: str
) -> None:
    settings.ARAGORA_QUEUE = {**settings.ARAGORA_QUEUE, "enqueue_replicas": "1"}
    with pytest.raises(EnqueueNotReplicated):
        replicated_task.enqueue()
