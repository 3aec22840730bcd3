"""A browser logs into the admin, opens the queue dashboard and sees it follow the queue.

Debian's chromium (installed by `bin/setup --test`) is driven by the Playwright package through
``executable_path``; Playwright's own browser downloads are never used. The site is a real
server (pytest-django's ``live_server``); jobs are enqueued through the REST API.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import httpx
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from queue_app.queue import create_redis_queue, get_queue_config
from queue_app.queue.redis import WorkerRegistry
from tests.api_support import debate
from tests.queue_ops import process_jobs

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from pytest_django.live_server_helper import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
#: Screenshots land here (gitignored); the issue note links the dashboard one.
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
#: The longest wait for the page to show new numbers (it refreshes every second here).
UPDATE_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page() -> Iterator[Page]:
    """Return a page of Debian's headless chromium, closed after the test."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make test` (bin/setup --test) installs chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 1000})
        finally:
            browser.close()


async def _register_worker() -> None:
    queue = await create_redis_queue(config=get_queue_config())
    try:
        info = {"worker_id": "debate-worker-1", "host": "web-1", "pid": 4242, "active_jobs": 0}
        await WorkerRegistry(queue.redis, queue.config).register(
            {**info, "queues": ["debates"]}, 300
        )
    finally:
        await queue.close()


def _enqueue(site: Site, count: int) -> None:
    headers = {"Authorization": f"Token {site.token}"}
    with httpx.Client(base_url=site.url, headers=headers, timeout=10) as api:
        for n in range(count):
            response = api.post("/api/queue/jobs/", json=debate(f"Question {n}?"))
            assert response.status_code == 201, response.text


def _cell(page: Page, queue: str, field: str) -> str:
    return page.locator(f'#dash-queues tr[data-queue="{queue}"] td[data-field="{field}"]')


def _off_the_loop(function: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Call ``function`` in another thread: Playwright's sync API keeps a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


class Site(NamedTuple):
    """The live server's URL and an API token of its admin user."""

    url: str
    token: str


@pytest.fixture
def site(django_db_setup: None, live_server: LiveServer, redis_url: str) -> Site:
    """Create the admin user, enqueue and finish a few jobs, register a worker.

    The test asks for this fixture, not for ``live_server`` itself, so that the test database
    exists before the (session-wide) live server starts and shares its in-memory connection.
    """
    user = User.objects.create_superuser("admin", "admin@localhost", "s3cret-pass")
    site = Site(live_server.url, Token.objects.create(user=user).key)
    _enqueue(site, 6)
    process_jobs("completed", count=3)
    process_jobs("failed", count=1)
    asyncio.run(_register_worker())
    return site


def test_dashboard_browser_follows_the_queue(site: Site, page: Page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    page.click("text=Queue dashboard")
    assert page.url.endswith("/admin/queue/dashboard/")
    page.goto(f"{site.url}/admin/queue/dashboard/?refresh=1")
    expect(_cell(page, "debates", "depth")).to_have_text("2")
    expect(_cell(page, "debates", "completed")).to_have_text("3")
    expect(page.locator("#dash-worker-count")).to_have_text("1")
    expect(page.locator('#dash-workers tr[data-worker="debate-worker-1"]')).to_be_visible()

    _enqueue(site, 5)
    _off_the_loop(process_jobs, "completed", count=4)
    _off_the_loop(process_jobs, "failed", count=2)
    timeout = {"timeout": UPDATE_TIMEOUT_MS}
    expect(_cell(page, "debates", "depth")).to_have_text("1", **timeout)
    expect(_cell(page, "debates", "completed")).to_have_text("7", **timeout)
    expect(_cell(page, "debates", "dead_letters")).to_have_text("3", **timeout)
    expect(page.locator("#dash-processed-total")).to_have_text("7", **timeout)
    expect(page.locator("#dash-failed-total")).to_have_text("3", **timeout)
    expect(page.locator("#dash-chart rect.processed")).not_to_have_count(0)
    expect(page.locator("#dash-error")).to_be_hidden()

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copyfile(shot, OUTPUT / "dashboard.png")
    assert (OUTPUT / "dashboard.png").stat().st_size > 10_000
