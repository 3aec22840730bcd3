"""Settings of the chaos run: the test settings, plus the ``chaos`` task queue and app.

The workers of the run and its producer both use them (``DJANGO_SETTINGS_MODULE``).
"""

from __future__ import annotations

import os

from chaos.plan import CHAOS_QUEUE
from tests import settings as base
from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*base.INSTALLED_APPS, "chaos.apps.ChaosConfig"]
TASKS = {
    "default": {
        **base.TASKS["default"],
        "QUEUES": ["default", CHAOS_QUEUE],
        # Kills may cost attempts: a job designed to fail once must not run out of them.
        "OPTIONS": {"max_attempts": 10},
    }
}
#: Seconds finished jobs are kept (the queue's ``retention_seconds``), so that the run ends empty.
CHAOS_RETENTION_SECONDS = int(os.environ.get("CHAOS_RETENTION_SECONDS") or 60)
