"""Admin: job ledger and failures (``jobs``), webhook endpoints and deliveries (``webhooks``),
the routing delivery log (``routing``), consensus healings (``healing``).

The queue dashboard lives in ``queue_app.admin.dashboard`` and is linked from the admin index.
"""

from __future__ import annotations

from queue_app.admin import healing, jobs, routing, webhooks

__all__ = ["healing", "jobs", "routing", "webhooks"]
