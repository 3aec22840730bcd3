"""Back-pressure: a queue holds at most its depth limit of waiting jobs; beyond it, enqueue is
refused whole (``QueueFull``; REST 429 with Retry-After; django.tasks raises it; counted)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from queue_app.conf import build_config
from queue_app.queue import Job, QueueConfig, QueueError, QueueFull, get_queue_config
from queue_app.tasks.examples import add
from tests.api_support import JOBS, debate, make_user, token_client
from tests.queue_ops import process_jobs, start_jobs, take

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

    from tests.integration.conftest import QueueFactory

P = "aragora:queue:"
REFUSED = "aragora_queue_enqueue_refused_total"


def limited(config: QueueConfig, **changes: object) -> QueueConfig:
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


async def job_keys(queue_client: redis.asyncio.Redis) -> int:
    return len([key async for key in queue_client.scan_iter(f"{P}job:*")])


# -- the library ----------------------------------------------------------------------------------


async def test_enqueue_beyond_max_depth_raises_queue_full(
    make_queue: QueueFactory, queue_config: QueueConfig
) -> None:
    queue = await make_queue(config=limited(queue_config, max_depth=3))
    first = Job(payload={})
    await queue.enqueue(first)
    await queue.enqueue(Job(payload={}), delay_seconds=60)  # delayed jobs wait too
    retried = Job(payload={})
    await queue.enqueue(retried)
    with pytest.raises(QueueFull, match="'debates' is full: 3 jobs waiting, limit 3") as full:
        await queue.enqueue(Job(payload={}))
    assert isinstance(full.value, QueueError) and full.value.queue == "debates"
    assert await queue.enqueue(first) == first.id  # a known id adds nothing: no refusal

    started = {job.id for job in await take(queue, 2)}
    assert started == {first.id, retried.id}
    await queue.retry(retried.id, "boom", 60)  # retrying: waits again
    await queue.enqueue(Job(payload={}))  # the running job left room for one
    with pytest.raises(QueueFull):
        await queue.enqueue(Job(payload={}))
    await queue.complete(first.id)
    stats = await queue.get_queue_stats()
    assert (stats["pending"], stats["retrying"], stats["completed"]) == (2, 1, 1)


async def test_enqueue_many_is_all_or_nothing(
    make_queue: QueueFactory, queue_config: QueueConfig
) -> None:
    queue = await make_queue(config=limited(queue_config, max_depth=700))
    await queue.enqueue_many([Job(payload={}) for _ in range(200)])
    refused = [Job(payload={"i": i}) for i in range(600)]  # more than one script chunk (500)
    with pytest.raises(QueueFull, match="200 jobs waiting, limit 700"):
        await queue.enqueue_many(refused)
    assert await job_keys(queue.redis) == 200
    assert (await queue.get_queue_stats())["stream_length"] == 200
    assert len(await queue.enqueue_many(refused[:500])) == 500
    assert (await queue.get_queue_stats())["pending"] == 700


async def test_per_queue_limits_replace_the_default(
    make_queue: QueueFactory, queue_config: QueueConfig
) -> None:
    config = limited(queue_config, max_depth=2, max_depths={"webhooks": 1, "bulk": 5})
    queue = await make_queue(config=config)
    await queue.enqueue(Job(payload={}), queue_name="webhooks")
    with pytest.raises(QueueFull, match="'webhooks'"):
        await queue.enqueue(Job(payload={}), queue_name="webhooks")
    await queue.enqueue_many([Job(payload={}) for _ in range(5)], "bulk")
    await queue.enqueue_many([Job(payload={}) for _ in range(2)])
    with pytest.raises(QueueFull, match="'debates'"):
        await queue.enqueue(Job(payload={}))


def test_queue_config_checks_depth_limits() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_depth must be a positive integer"):
            QueueConfig(max_depth=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_depths\\['x'\\]"):
        QueueConfig(max_depths={"x": 0})
    with pytest.raises(ValueError, match="not declared: 'x'"):
        QueueConfig(queues=frozenset({"debates"}), max_depths={"x": 3})
    assert QueueConfig.from_env({"ARAGORA_QUEUE_MAX_DEPTH": "40"}).max_depth == 40
    assert QueueConfig().depth_limit("debates") is None


# -- the Django layer -----------------------------------------------------------------------------


@pytest.fixture
def api(redis_url: str) -> APIClient:
    return token_client(make_user("alice", "acme"))


def refused_count(queue: str) -> float:
    return REGISTRY.get_sample_value(REFUSED, {"queue": queue}) or 0.0


@pytest.mark.django_db
def test_api_answers_429_with_retry_after_when_the_queue_is_full(
    api: APIClient, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_QUEUE = {**settings.ARAGORA_QUEUE, "max_depth": "2"}
    before = refused_count("debates")
    for _ in range(2):
        assert api.post(JOBS, debate(), format="json").status_code == 201
    response = api.post(JOBS, debate(), format="json")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert "'debates' is full: 2 jobs waiting, limit 2" in response.json()["detail"]
    assert refused_count("debates") == before + 1
    staff = Client()
    staff.force_login(make_user("ops", staff=True))
    metrics = staff.get("/metrics").content.decode()
    assert f'{REFUSED}{{queue="debates"}} {before + 1}' in metrics

    start_jobs(1)  # a running job does not wait: room for one more
    assert api.post(JOBS, debate(), format="json").status_code == 201
    process_jobs("completed", count=2)
    assert api.post(JOBS, debate(), format="json").status_code == 201


@pytest.mark.django_db
def test_tasks_backend_raises_queue_full(settings: SettingsWrapper, redis_url: str) -> None:
    settings.ARAGORA_QUEUE_MAX_DEPTHS = {"tasks": 1}
    assert get_queue_config().depth_limit("tasks") == 1
    add.enqueue(1, 2)
    before = refused_count("tasks")
    with pytest.raises(QueueFull, match="'tasks' is full"):
        add.enqueue(3, 4)
    assert refused_count("tasks") == before + 1
    with redis.Redis.from_url(redis_url) as client:
        assert client.zcard(f"{P}tasks:idx:pending") == 1


def test_conf_reads_depth_limits(settings: SettingsWrapper) -> None:
    settings.ARAGORA_QUEUE = {**settings.ARAGORA_QUEUE, "max_depth": "1000"}
    settings.ARAGORA_QUEUE_MAX_DEPTHS = {"webhook_delivery": 50}
    config = get_queue_config()
    assert (config.depth_limit("debates"), config.depth_limit("webhook_delivery")) == (1000, 50)


@pytest.mark.parametrize(
    ("changes", "var"),
    [
        ({"ARAGORA_QUEUE_MAX_DEPTHS": {"nowhere": 50}}, "ARAGORA_QUEUE_MAX_DEPTHS"),
        ({"ARAGORA_QUEUE_MAX_DEPTHS": {"debates": 0}}, "ARAGORA_QUEUE_MAX_DEPTHS"),
        ({"ARAGORA_QUEUES": ["bad name"]}, "ARAGORA_QUEUES"),
        ({"ARAGORA_QUEUE": {"max_depth": "0"}}, "ARAGORA_QUEUE_MAX_DEPTH"),
        ({"ARAGORA_QUEUE": {"max_depth": "many"}}, "ARAGORA_QUEUE_MAX_DEPTH"),
    ],
)
def test_conf_bad_queue_settings_name_their_variable(changes: dict[str, object], var: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=var), override_settings(**changes):
        build_config()
