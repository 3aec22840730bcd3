"""The queue dashboard: its JSON reflects Redis, and it is for staff only."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from typing import TYPE_CHECKING

import pytest
from django.test import Client

from queue_app.queue import create_redis_queue, get_queue_config
from queue_app.queue.redis import WorkerRegistry
from queue_app.services import jobs, scope
from tests.api_support import make_user
from tests.queue_ops import process_jobs, start_jobs

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db

DATA = "/admin/queue/dashboard/data/"


@pytest.fixture
def staff(redis_url: str) -> Client:
    """Return a client logged in as staff, with an empty private Redis."""
    client = Client()
    client.force_login(make_user("ops", staff=True))
    return client


def enqueue(count: int, queue: str = "debates", delay_seconds: float = 0) -> None:
    for n in range(count):
        job = jobs.build_job(
            scope.ADMIN, "debate", {"question": f"Q{n}"}, priority=0, max_attempts=1
        )
        jobs.enqueue_job(scope.ADMIN, job, queue=queue, delay_seconds=delay_seconds)


async def _register(worker_id: str) -> None:
    queue = await create_redis_queue(config=get_queue_config())
    try:
        info = {"worker_id": worker_id, "host": "box-1", "pid": 4242, "queues": ["debates"]}
        counters = {"active_jobs": 1, "max_concurrent": 4, "jobs_processed": 7, "jobs_failed": 2}
        info |= {**counters, "started_at": time.time() - 100}
        await WorkerRegistry(queue.redis, queue.config).register(info, 30)
    finally:
        await queue.close()


def test_dashboard_data_reflects_queues_workers_and_throughput(staff: Client) -> None:
    enqueue(5)
    enqueue(1, queue="webhook_delivery", delay_seconds=300)
    process_jobs("completed", count=2)
    process_jobs("failed", count=1)
    start_jobs(1)
    asyncio.run(_register("worker-a"))

    data = staff.get(DATA).json()
    queues = {queue["name"]: queue for queue in data["queues"]}
    debates = queues["debates"]
    assert (debates["depth"], debates["in_flight"], debates["dead_letters"]) == (1, 1, 1)
    assert debates["counts"] == {
        "pending": 1,
        "processing": 1,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "retrying": 0,
    }
    assert queues["webhook_delivery"]["delayed"] == 1 and queues["webhook_delivery"]["depth"] == 0
    assert (debates["workers"], queues["webhook_delivery"]["workers"]) == (1, 0)
    assert debates["throughput_per_minute"] == 3 / 5  # 3 finished in the last 5 minutes
    assert (
        0 < debates["latency_seconds"] < 10 and queues["webhook_delivery"]["latency_seconds"] == 0
    )
    assert (sum(debates["chart"]["processed"]), sum(debates["chart"]["failed"])) == (2, 1)
    assert sum(queues["webhook_delivery"]["chart"]["processed"]) == 0
    [worker] = data["workers"]
    assert worker["worker_id"] == "worker-a" and worker["heartbeat_age_seconds"] < 5
    assert (worker["jobs_processed"], worker["jobs_failed"], worker["max_concurrent"]) == (7, 2, 4)
    assert 99 <= worker["uptime_seconds"] < 110
    chart = data["chart"]
    assert len(chart["minutes"]) == 60 and chart["minutes"][-1] == int(time.time() // 60) * 60
    assert (sum(chart["processed"]), sum(chart["failed"])) == (2, 1)
    assert chart["processed"][-1] + chart["processed"][-2] == 2
    assert data["ledger_backlog"] == 6 + 3  # 6 enqueues, 3 terminal transitions


def test_dashboard_latency_matches_the_metrics_gauge(staff: Client) -> None:
    enqueue(2)
    deadline = time.monotonic() + 5
    while staff.get(DATA).json()["queues"][0]["latency_seconds"] < 0.2:  # the job has waited
        assert time.monotonic() < deadline
    before = staff.get(DATA).json()["queues"][0]["latency_seconds"]
    metrics = staff.get("/metrics").content.decode()
    after = staff.get(DATA).json()["queues"][0]["latency_seconds"]
    match = re.search(r'aragora_queue_oldest_pending_age_seconds\{queue="debates"\} (\S+)', metrics)
    assert match is not None and before <= float(match.group(1)) <= after


def test_dashboard_page_renders_current_numbers(staff: Client) -> None:
    enqueue(3)
    page = staff.get("/admin/queue/dashboard/")
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    text = page.content.decode()
    assert "Queue dashboard" in text and 'data-url="/admin/queue/dashboard/data/"' in text
    assert 'data-jobs-url="/admin/queue_app/jobrecord/"' in text
    assert 'data-failures-url="/admin/queue_app/jobfailure/"' in text
    initial = re.search(r'<script id="dash-initial" type="application/json">(.*?)</script>', text)
    assert initial is not None
    [queue] = json.loads(initial.group(1))["queues"]
    assert queue["name"] == "debates" and queue["depth"] == 3


def test_dashboard_data_is_for_staff_only(redis_url: str) -> None:
    client = Client()
    assert client.get(DATA).status_code == 403
    client.force_login(make_user("visitor"))
    response = client.get(DATA)
    assert response.status_code == 403 and response.json() == {"detail": "Staff only."}
    assert client.post(DATA).status_code == 405


def test_dashboard_reports_redis_outage(staff: Client, settings: SettingsWrapper) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    response = staff.get(DATA)
    assert response.status_code == 503 and "Queue unavailable" in response.json()["detail"]
    page = staff.get("/admin/queue/dashboard/").content.decode()
    assert 'id="dash-error" class="errornote">Queue unavailable' in page
