"""Admin: job ledger and failures (``jobs``), webhook endpoints and deliveries (``webhooks``).

The queue dashboard lives in ``queue_app.admin.dashboard`` and is linked from the admin index.
"""

from __future__ import annotations

from queue_app.admin import jobs, webhooks

__all__ = ["jobs", "webhooks"]
