"""The queue dashboard: an admin page for staff and the JSON it refreshes itself from.

Mounted at /admin/queue/ by ``aragora_site.urls``; the admin index links to it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from queue_app.queue import QueueConnectionError
from queue_app.services import stats

#: Seconds between two refreshes of the page (``?refresh=`` picks 1 to 60).
REFRESH_SECONDS = 5


def _snapshot() -> tuple[dict[str, Any] | None, str]:
    """Return the dashboard data, or None and why the queue could not be read."""
    try:
        return stats.dashboard_snapshot(), ""
    except QueueConnectionError as error:
        return None, f"Queue unavailable: {error}"


def _refresh_seconds(request: HttpRequest) -> int:
    raw = request.GET.get("refresh", "")
    return min(60, max(1, int(raw))) if raw.isdigit() else REFRESH_SECONDS


@require_safe
@never_cache
@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Render the dashboard page with the current data; its script refreshes it."""
    snapshot, error = _snapshot()
    context = {
        **admin.site.each_context(request),
        "title": "Queue dashboard",
        # The wide tables need the room of the admin's navigation sidebar.
        "is_nav_sidebar_enabled": False,
        "data_url": reverse("queue-dashboard-data"),
        "jobs_url": reverse("admin:queue_app_jobrecord_changelist"),
        "failures_url": reverse("admin:queue_app_jobfailure_changelist"),
        "refresh_seconds": _refresh_seconds(request),
        "snapshot": snapshot,
        "error": error,
    }
    return render(request, "admin/queue_app/dashboard.html", context)


@require_safe
@never_cache
def dashboard_data(request: HttpRequest) -> JsonResponse:
    """Answer the dashboard data as JSON: 403 for non-staff, 503 while Redis is down."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return JsonResponse({"detail": "Staff only."}, status=403)
    snapshot, error = _snapshot()
    if snapshot is None:
        return JsonResponse({"detail": error}, status=503)
    return JsonResponse(snapshot)


urlpatterns = [
    path("dashboard/", dashboard, name="queue-dashboard"),
    path("dashboard/data/", dashboard_data, name="queue-dashboard-data"),
]
