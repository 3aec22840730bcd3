"""Browser tests' helpers: Debian's chromium through Playwright, offline, and the live site.

Debian's chromium (installed by `bin/setup --test`) is driven by the Playwright package through
``executable_path``; Playwright's own browser downloads are never used. Every request a page
makes outside the live server is refused and recorded, so a test can assert that pages work
offline (no CDN).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api_support import JOBS

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

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
#: Screenshots land here (gitignored); the best ones are copied to docs/ for the README.
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
#: The longest wait for a page to show new numbers (the dashboard refreshes every second here).
UPDATE_TIMEOUT_MS = 15_000
#: Password of the admin user of browser tests.
PASSWORD = "s3cret-pass"


class Site(NamedTuple):
    """The live server's URL and an API token of its admin user."""

    url: str
    token: str


class Browser(NamedTuple):
    """A page of headless chromium and the outside URLs it tried to load."""

    page: Page
    external: list[str]


def open_browser() -> Iterator[Browser]:
    """Yield a page of Debian's headless chromium that may load nothing but loopback URLs."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make test` (bin/setup --test) installs chromium")
    from playwright.sync_api import sync_playwright

    external: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith("data:"):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.route("**/*", only_local)
            yield Browser(page, external)
        finally:
            browser.close()


def log_in(page: Page, site: Site) -> None:
    """Log into the admin as ``admin``."""
    page.goto(f"{site.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def enqueue(site: Site, body: dict[str, object], count: int = 1) -> list[str]:
    """Enqueue ``count`` jobs through the REST API; return their ids."""
    headers = {"Authorization": f"Token {site.token}"}
    ids = []
    with httpx.Client(base_url=site.url, headers=headers, timeout=10) as api:
        for _ in range(count):
            response = api.post(JOBS, json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


def off_the_loop[T](function: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call ``function`` in another thread: Playwright's sync API keeps a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Save a full-page screenshot as ``test-output/<name>`` and return its path."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copyfile(shot, OUTPUT / name)
    assert (OUTPUT / name).stat().st_size > 10_000
    return OUTPUT / name
