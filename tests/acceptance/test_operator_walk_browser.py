"""An operator's walk in a browser: enqueue from the API docs, watch a real worker run the job
on the dashboard, open the job, retry a failed one from its page.

The site is pytest-django's ``live_server``; the worker is a ``manage.py queue_worker`` process on
the private Redis (debates with the offline demo agents). Its ledger events are stored by the
test (``drain_ledger``), in the test database the live server reads.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.db import connections
from rest_framework.authtoken.models import Token

from queue_app.queue import Job, create_redis_queue, get_queue_config
from tests import browser_support as web
from tests.queue_ops import drain_ledger, process_jobs

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from pytest_django.live_server_helper import LiveServer

ROOT = Path(__file__).resolve().parents[2]
#: A debate that runs offline: three demo agents agree by round 2.
DEMO_DEBATE = {
    "job_type": "debate",
    "payload": {"question": "Retry me?", "agents": ["demo-1", "demo-2", "demo-3"], "rounds": 2},
    "max_attempts": 1,
}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(django_db_setup: None, live_server: LiveServer, redis_url: str) -> web.Site:
    """Create the admin user (see ``test_dashboard_browser.site`` for why not ``live_server``)."""
    user = User.objects.create_superuser("admin", "admin@localhost", web.PASSWORD)
    return web.Site(live_server.url, Token.objects.create(user=user).key)


@pytest.fixture
def failed_id(site: web.Site) -> str:
    """Return the id of a job that failed (in the ledger and in dead letters)."""
    [job_id] = web.enqueue(site, DEMO_DEBATE)
    process_jobs("failed")
    drain_ledger()
    return job_id


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Yield a list to which ``_start_worker`` adds the worker process; killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _start_worker(started: list[subprocess.Popen[bytes]], redis_url: str, log: Path) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "ARAGORA_RUN_DIR": str(log.parent / "run")}
    args = ["--queues", "debates", "--worker-id", "walk-worker", "--no-ledger"]
    with log.open("wb") as out:
        started.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "queue_worker", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )


def _enqueue_from_api_docs(page: Page, site: web.Site) -> str:
    """Send the docs page's default ``POST jobs/`` body with "Try it out"; return the job id."""
    from playwright.sync_api import expect

    page.goto(f"{site.url}/api/docs/")
    operation = page.locator("#operations-queue-queue_jobs_create")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody td.response-col_status").first
    expect(status).to_have_text("201", timeout=web.UPDATE_TIMEOUT_MS)
    body = operation.locator(
        ".live-responses-table tbody .response-col_description pre.microlight"
    ).first
    return str(json.loads(body.inner_text())["id"])


async def _job(job_id: str) -> Job | None:
    queue = await create_redis_queue(config=get_queue_config())
    try:
        return await queue.get_status(job_id)
    finally:
        await queue.close()


def _wait_for_status(job_id: str, status: str) -> None:
    deadline = time.monotonic() + web.UPDATE_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        job = web.off_the_loop(asyncio.run, _job(job_id))
        if job is not None and job.status.value == status:
            return
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not become {status}")


def _drain_ledger_in_thread() -> None:
    """Store the ledger events with this thread's own connection, closed afterwards.

    Django never closes a connection to an in-memory SQLite database (it would lose the data);
    this thread's is one of several to the shared-cache test database, so it closes it itself.
    """
    try:
        drain_ledger()
    finally:
        for connection in connections.all(initialized_only=True):
            if connection.connection is not None:
                connection._close()
                connection.connection = None


@pytest.mark.timeout(120)
def test_operator_walk_docs_dashboard_job_detail_retry(
    site: web.Site,
    failed_id: str,
    browser: web.Browser,
    start_worker: list[subprocess.Popen[bytes]],
    redis_url: str,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    page, timeout = browser.page, {"timeout": web.UPDATE_TIMEOUT_MS}
    web.log_in(page, site)
    job_id = _enqueue_from_api_docs(page, site)
    web.screenshot(page, tmp_path, "api-docs.png")

    page.goto(f"{site.url}/admin/queue/dashboard/?refresh=1")
    warning = page.locator('#dash-warnings li[data-queue="debates"]')
    expect(warning).to_contain_text("No live worker serves queue")
    expect(warning).to_contain_text("1 job(s) wait")
    _start_worker(start_worker, redis_url, tmp_path / "worker.log")
    expect(warning).to_have_count(0, **timeout)
    row = page.locator('#dash-queues tr[data-queue="debates"]')
    expect(row.locator('td[data-field="completed"]')).to_have_text("1", **timeout)
    expect(row.locator('td[data-field="workers"]')).to_have_text("1")
    web.screenshot(page, tmp_path, "dashboard-live.png")

    web.off_the_loop(_drain_ledger_in_thread)
    row.locator('td[data-field="completed"] a').click()
    page.click(f"text={job_id[:8]}")
    expect(page.locator(".field-status_display")).to_contain_text("completed")
    expect(page.locator(".field-ran .readonly")).not_to_have_text("-")
    web.screenshot(page, tmp_path, "job-detail.png")

    page.goto(f"{site.url}/admin/queue_app/jobfailure/")
    page.click(f"text={failed_id[:8]}")
    expect(page.locator(".field-error_text pre")).to_have_text("boom: the agent crashed")
    web.screenshot(page, tmp_path, "job-failed.png")
    page.click("#job-retry")
    expect(page.locator(".messagelist")).to_contain_text("Retried 1 job(s).")
    _wait_for_status(failed_id, "completed")
    assert browser.external == [], browser.external
