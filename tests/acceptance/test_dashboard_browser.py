"""A browser logs into the admin, opens the queue dashboard and sees it follow the queue.

The site is a real server (pytest-django's ``live_server``); jobs are enqueued through the REST
API and finished by a test helper acting as a worker (``tests.browser_support`` has the rest).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from queue_app.queue import create_redis_queue, get_queue_config
from queue_app.queue.redis import WorkerRegistry
from tests import browser_support as web
from tests.api_support import debate
from tests.queue_ops import process_jobs

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


async def _register_worker() -> None:
    queue = await create_redis_queue(config=get_queue_config())
    try:
        info = {"worker_id": "debate-worker-1", "host": "web-1", "pid": 4242, "active_jobs": 0}
        counters = {"max_concurrent": 4, "jobs_processed": 12, "jobs_failed": 3}
        await WorkerRegistry(queue.redis, queue.config).register(
            {**info, **counters, "queues": ["debates"]}, 300
        )
    finally:
        await queue.close()


def _cell(page: Page, queue: str, field: str) -> Locator:
    return page.locator(f'#dash-queues tr[data-queue="{queue}"] td[data-field="{field}"]')


@pytest.fixture
def site(django_db_setup: None, live_server: LiveServer, redis_url: str) -> web.Site:
    """Create the admin user, enqueue and finish a few jobs, register a worker.

    The test asks for this fixture, not for ``live_server`` itself, so that the test database
    exists before the (session-wide) live server starts and shares its in-memory connection.
    """
    user = User.objects.create_superuser("admin", "admin@localhost", web.PASSWORD)
    site = web.Site(live_server.url, Token.objects.create(user=user).key)
    web.enqueue(site, debate(), 6)
    process_jobs("completed", count=3)
    process_jobs("failed", count=1)
    asyncio.run(_register_worker())
    return site


def test_dashboard_browser_follows_the_queue(
    site: web.Site, browser: web.Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.page
    web.log_in(page, site)
    page.click("text=Queue dashboard")
    assert page.url.endswith("/admin/queue/dashboard/")
    page.goto(f"{site.url}/admin/queue/dashboard/?refresh=1")
    expect(_cell(page, "debates", "depth")).to_have_text("2")
    expect(_cell(page, "debates", "completed")).to_have_text("3")
    expect(_cell(page, "debates", "workers")).to_have_text("1")
    expect(page.locator("#dash-warnings")).to_be_hidden()
    expect(page.locator("#dash-worker-count")).to_have_text("1")
    worker = page.locator('#dash-workers tr[data-worker="debate-worker-1"]')
    expect(worker.locator('td[data-field="processed"]')).to_have_text("12")
    expect(worker.locator('td[data-field="slots"]')).to_have_text("0 / 4")

    web.enqueue(site, debate(), 5)
    web.off_the_loop(process_jobs, "completed", count=4)
    web.off_the_loop(process_jobs, "failed", count=2)
    timeout = {"timeout": web.UPDATE_TIMEOUT_MS}
    expect(_cell(page, "debates", "depth")).to_have_text("1", **timeout)
    expect(_cell(page, "debates", "completed")).to_have_text("7", **timeout)
    expect(_cell(page, "debates", "dead_letters")).to_have_text("3", **timeout)
    expect(page.locator("#dash-processed-total")).to_have_text("7", **timeout)
    expect(page.locator("#dash-failed-total")).to_have_text("3", **timeout)
    expect(page.locator("#dash-chart rect.processed")).not_to_have_count(0)
    per_queue = page.locator('#dash-queue-charts .queue-chart[data-queue="debates"]')
    expect(per_queue.locator("rect.failed")).not_to_have_count(0)
    expect(per_queue.locator("p")).to_have_text("7 processed, 3 failed")
    expect(page.locator("#dash-error")).to_be_hidden()
    web.screenshot(page, tmp_path, "dashboard.png")

    _cell(page, "debates", "dead_letters").locator("a").click()
    assert page.url.endswith("/admin/queue_app/jobfailure/?queue=debates")
    expect(page.locator("#dead-letter-count")).to_have_text("3")
    assert browser.external == []
