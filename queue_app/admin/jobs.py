"""Admin of the job ledger and failures (retry, cancel, dead letters) and organization members.

Actions call ``queue_app.services``: Redis stays the source of truth, the ledger rows show the
change once their event is drained (at once for the status the action set).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from queue_app.models import (
    JobFailure,
    JobRecord,
    OrganizationMembership,
    from_timestamp,
)
from queue_app.queue import JobNotFound, JobStatus, QueueConnectionError
from queue_app.services import jobs, scope, stats

#: Most jobs one action touches (each one is a Redis round trip).
ACTION_LIMIT = 500


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


def _each_job(
    admin_: admin.ModelAdmin,
    request: HttpRequest,
    records: QuerySet[JobRecord],
    verb: str,
    act: Callable[[JobRecord], str],
) -> None:
    """Apply ``act`` to each selected job, log it, and report what happened in one message."""
    done, refused = 0, []
    try:
        for record in records[:ACTION_LIMIT]:
            try:
                job_id = act(record)
            except (jobs.JobStateConflict, JobNotFound) as error:
                refused.append(f"{record.job_id}: {error}")
                continue
            done += 1
            suffix = "" if job_id == record.job_id else f" as new job {job_id}"
            admin_.log_change(request, record, f"{verb.capitalize()}{suffix}.")
    except QueueConnectionError as error:
        admin_.message_user(request, f"Queue unavailable: {error}", messages.ERROR)
    if done:
        admin_.message_user(request, f"{verb.capitalize()} {done} job(s).", messages.SUCCESS)
    if refused:
        admin_.message_user(request, "Not " + verb + ": " + "; ".join(refused), messages.WARNING)


@admin.register(JobRecord)
class JobRecordAdmin(admin.ModelAdmin):
    """The job ledger: filter, search by id, inspect payload/result/error; retry or cancel."""

    list_display = (
        "job_id",
        "job_type",
        "queue",
        "status",
        "attempts",
        "created_at",
        "completed_at",
        "organization",
    )
    list_filter = ("status", "queue", "job_type", "created_at", "completed_at")
    search_fields = ("=job_id", "=trace_id")
    search_help_text = "Exact job id or trace id."
    date_hierarchy = "created_at"
    actions = ("retry_jobs", "cancel_jobs")
    fieldsets = (
        (None, {"fields": ("job_id", "job_type", "queue", "status", "priority", "worker_id")}),
        ("Attempts", {"fields": ("attempts", "max_attempts", "manual_retries", "last_retried_at")}),
        ("Times", {"fields": ("created_at", "started_at", "completed_at")}),
        ("Data", {"fields": ("payload_json", "result_json", "error")}),
        ("Tracing and ownership", {"fields": ("trace_id", "owner", "organization")}),
        ("Ledger", {"fields": ("recorded_at", "ledger_entry")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Show every field read-only: the ledger mirrors Redis."""
        return [field for block in self.fieldsets for field in block[1]["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Refuse: rows come from the ledger writer."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse edits; the detail page is read-only."""
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Let users who may change ledger rows retry and cancel jobs."""
        return request.user.has_perm("queue_app.change_jobrecord")

    @admin.display(description="payload")
    def payload_json(self, record: JobRecord) -> str:
        """Render the payload as indented JSON."""
        return _pretty(record.payload)

    @admin.display(description="result")
    def result_json(self, record: JobRecord) -> str:
        """Render the result as indented JSON."""
        return _pretty(record.result)

    @admin.action(description="Retry selected jobs (new run from attempt 0)", permissions=["retry"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[JobRecord]) -> None:
        """Run failed or cancelled jobs again; re-enqueue a copy of jobs Redis forgot."""
        _each_job(self, request, queryset, "retried", jobs.retry_record)

    @admin.action(description="Cancel selected jobs", permissions=["retry"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[JobRecord]) -> None:
        """Cancel pending, retrying or running jobs."""
        _each_job(
            self,
            request,
            queryset,
            "cancelled",
            lambda record: jobs.cancel_job(scope.ADMIN, record.job_id).id,
        )


@admin.register(JobFailure)
class JobFailureAdmin(JobRecordAdmin):
    """Failed jobs from the ledger, plus the newest dead letters Redis holds right now."""

    list_display = (
        "job_id",
        "job_type",
        "queue",
        "attempts",
        "short_error",
        "completed_at",
        "manual_retries",
    )
    list_filter = ("queue", "job_type", "completed_at")
    actions = ("retry_jobs",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRecord]:
        """Return failed jobs only."""
        return super().get_queryset(request).filter(status=JobStatus.FAILED.value)

    @admin.display(description="error")
    def short_error(self, record: JobRecord) -> str:
        """Return the first 120 characters of the error."""
        return record.error[:120]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Add the live dead letters to the list of failures."""
        context = {**(extra_context or {})}
        try:
            context["dead_letters"] = [
                {"job": job, "failed_at": from_timestamp(job.completed_at)}
                for job in stats.dead_letters()
            ]
        except QueueConnectionError as error:
            context["dead_letters_error"] = str(error)
        return super().changelist_view(request, context)

    def get_urls(self) -> list[Any]:
        """Add the POST URL that retries one dead letter."""
        retry = self.admin_site.admin_view(require_POST(self.retry_dead_letter))
        url = path("dead-letters/<str:job_id>/retry/", retry, name="queue_app_retry_dead_letter")
        return [url, *super().get_urls()]

    def retry_dead_letter(self, request: HttpRequest, job_id: str) -> HttpResponse:
        """Retry one dead-lettered job, then go back to the failures."""
        back = HttpResponseRedirect(reverse("admin:queue_app_jobfailure_changelist"))
        if not self.has_retry_permission(request):
            self.message_user(request, "You may not retry jobs.", messages.ERROR)
            return back
        try:
            jobs.retry_job(scope.ADMIN, job_id)
        except (jobs.JobStateConflict, JobNotFound, QueueConnectionError) as error:
            self.message_user(request, f"Not retried: {error}", messages.WARNING)
        else:
            self.message_user(request, f"Retried {job_id}.", messages.SUCCESS)
        return back


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(admin.ModelAdmin):
    """Which organization each API user belongs to."""

    list_display = ("user", "organization")
    search_fields = ("user__username", "organization")
    list_filter = ("organization",)
