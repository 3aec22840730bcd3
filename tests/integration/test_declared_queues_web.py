"""The Django layer declares its queues: callers cannot create queues, and the statistics of
every queue cost a bounded number of Redis round trips."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import redis
from django.test import Client
from rest_framework.test import APIClient

from queue_app.api.views import queue_exception_handler
from queue_app.queue import UndeclaredQueue, get_queue_config
from queue_app.services import jobs, scope, stats
from tests.api_support import JOBS, debate, make_user, token_client
from workers import WORKER_KINDS

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

    from tests.round_trips import RoundTrips

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(redis_url: str) -> APIClient:
    return token_client(make_user("ops", staff=True))


def all_keys(redis_url: str) -> set[str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return set(client.scan_iter(count=1000))


def test_declared_queues_are_worker_kinds_tasks_and_the_setting(settings: SettingsWrapper) -> None:
    declared = {"debates", "diagnostics", "webhook_delivery", "transcriptions", "routing", "tasks"}
    declared |= {"batch_explainability", "gauntlet", "consensus_healing"}
    assert get_queue_config().queues == declared == {*WORKER_KINDS, "tasks"}
    settings.ARAGORA_QUEUES = ["reports", "exports"]
    assert {"reports", "exports", "debates", "tasks"} <= (get_queue_config().queues or set())


def test_api_refuses_undeclared_queues_and_creates_no_key(
    staff_api: APIClient, redis_url: str, settings: SettingsWrapper
) -> None:
    assert staff_api.post(JOBS, debate(), format="json").status_code == 201
    before = all_keys(redis_url)

    response = staff_api.post(JOBS, debate(queue="junk-1"), format="json")
    assert response.status_code == 400
    assert "Unknown queue 'junk-1'" in response.json()["queue"][0]
    assert staff_api.get("/api/queue/stats/").status_code == 200
    assert staff_api.get(JOBS, {"queue": "junk-2"}).json()["count"] == 0
    staff = Client()
    staff.force_login(make_user("admin", staff=True))
    assert staff.get("/admin/queue/dashboard/data/").status_code == 200
    assert all_keys(redis_url) == before

    settings.ARAGORA_QUEUES = ["junk-1"]
    assert staff_api.post(JOBS, debate(queue="junk-1"), format="json").status_code == 201


def test_undeclared_queue_from_the_library_is_a_400_naming_queue() -> None:
    response = queue_exception_handler(UndeclaredQueue("queue 'x' is not declared"), {})
    assert response is not None and response.status_code == 400
    assert response.data == {"queue": ["queue 'x' is not declared"]}


def test_stats_and_dashboard_cost_the_same_round_trips_for_3_or_30_queues(
    redis_url: str, settings: SettingsWrapper, round_trips: RoundTrips
) -> None:
    names = [f"q{i}" for i in range(30)]
    settings.ARAGORA_QUEUES = names

    def costs() -> tuple[int, int, int]:
        stats.queue_stats()  # the bridge is connected before counting
        round_trips.reset()
        found = stats.queue_stats()
        of_stats = round_trips.count
        round_trips.reset()
        stats.dashboard_snapshot()
        return len(found), of_stats, round_trips.count

    for name in names[:3]:
        job = jobs.build_job(scope.ADMIN, "debate", {"question": "Q"}, priority=0, max_attempts=1)
        jobs.enqueue_job(scope.ADMIN, job, queue=name)
    few = costs()
    for name in names[3:]:
        job = jobs.build_job(scope.ADMIN, "debate", {"question": "Q"}, priority=3, max_attempts=1)
        jobs.enqueue_job(scope.ADMIN, job, queue=name)
    many = costs()
    assert (few[0], many[0]) == (4, 31)  # with the default queue
    assert few[1:] == many[1:]
    assert many[1] == 3 and many[2] <= 8
