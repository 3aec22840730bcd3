"""Settings of the test run: the site's own, with a secret key of the tests (the site refuses to
start without one unless ARAGORA_DEBUG is on)."""

from __future__ import annotations

import os

TEST_SECRET_KEY = "test-only-key-of-the-aragora-test-suite-0123456789abcdef"
os.environ.setdefault("ARAGORA_SECRET_KEY", TEST_SECRET_KEY)

from aragora_site.settings import *  # noqa: E402, F403
