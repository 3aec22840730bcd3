"""Fixtures of the acceptance tests: a headless browser for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser_support import Browser, open_browser


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Return a page of headless chromium that may load nothing from outside the site."""
    yield from open_browser()
