"""Admin of the routing delivery log: one row per attempt to send a debate result to a channel."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from queue_app.models import RouteDelivery


@admin.register(RouteDelivery)
class RouteDeliveryAdmin(admin.ModelAdmin):
    """The routing delivery log, read-only (targets are shown without their secrets)."""

    list_display = (
        "delivered_at",
        "platform",
        "target",
        "debate_id",
        "attempt",
        "outcome",
        "status_code",
        "duration_seconds",
    )
    list_filter = ("platform", "outcome", "organization")
    search_fields = ("=job_id", "=debate_id")
    date_hierarchy = "delivered_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Refuse: deliveries are written by the routing worker."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: the log is read-only."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: old deliveries go with the ledger retention."""
        return False
