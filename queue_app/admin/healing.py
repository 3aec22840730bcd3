"""Admin of consensus healings: each with links to the healed debate and to its replacement."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from queue_app.models import HealingRecord


def _ledger_link(job_id: str) -> str:
    """Link to the job's ledger row (found by exact id, also once it exists later)."""
    if not job_id:
        return "-"
    url = reverse("admin:queue_app_jobrecord_changelist") + "?" + urlencode({"q": job_id})
    return format_html('<a href="{}">{}</a>', url, job_id)


@admin.register(HealingRecord)
class HealingRecordAdmin(admin.ModelAdmin):
    """Every healing (read-only): reason, action, outcome, the debate and its replacement."""

    list_display = (
        "created_at",
        "debate",
        "attempt",
        "reason",
        "action",
        "success",
        "new_debate",
    )
    list_filter = ("action", "reason", "success", "created_at")
    search_fields = ("=debate_id", "=root_debate_id", "=new_debate_id", "=heal_job_id")
    search_help_text = "Exact debate id (healed, root or new) or heal job id."
    date_hierarchy = "created_at"
    fields = (
        "heal_job_id",
        "debate",
        "root_debate_id",
        "attempt",
        "reason",
        "action",
        "success",
        "message",
        "new_debate",
        "metrics",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="debate", ordering="debate_id")
    def debate(self, record: HealingRecord) -> str:
        """Link to the healed debate."""
        return _ledger_link(record.debate_id)

    @admin.display(description="new debate", ordering="new_debate_id")
    def new_debate(self, record: HealingRecord) -> str:
        """Link to the debate that replaced it, if the action enqueued one."""
        return _ledger_link(record.new_debate_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Refuse: rows come from the healing worker."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse edits: a healing happened as recorded."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: healings count a chain's attempts; old rows go with the ledger retention."""
        return False
