"""Admin of the job ledger (retry, cancel, live due times), failed jobs and organization members.

Actions and the detail page's buttons call ``queue_app.services``: Redis stays the source of
truth, the ledger rows show the change once their event is drained (at once for the status the
action set). The dead letters of the failures page live in ``queue_app.admin.dead_letters``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from queue_app.admin import job_display as show
from queue_app.admin.dead_letters import DeadLetterViews
from queue_app.admin.paging import CappedCountPaginator
from queue_app.models import JobFailure, JobRecord, OrganizationMembership
from queue_app.queue import JobNotFound, JobStatus, QueueConnectionError
from queue_app.services import jobs, scope

#: Most jobs one action touches (each one is a Redis round trip).
ACTION_LIMIT = 500
#: Shortest job id prefix searched as a prefix (shorter terms match ids exactly).
MIN_PREFIX = 4
#: Statuses a job can be cancelled in, and retried in.
CANCELLABLE = ("pending", "processing", "retrying")
RETRYABLE = ("failed", "cancelled")


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
    """The job ledger: filter, search by id prefix, inspect a job; retry or cancel it."""

    list_display = (
        "short_job_id",
        "job_type",
        "queue",
        "status_display",
        "attempts",
        "created_at",
        "ran",
        "completed_at",
        "organization",
    )
    list_display_links = ("short_job_id",)
    list_filter = (
        show.StatusFilter,
        "queue",
        "job_type",
        "created_at",
        "completed_at",
        "archived_at",
    )
    search_fields = ("job_id",)
    search_help_text = f"Job id or its first {MIN_PREFIX}+ characters, or a trace id."
    date_hierarchy = "created_at"
    # Newest first on an index of its own (jobrecord_newest); counts capped, never the table.
    ordering = ("-created_at", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ("retry_jobs", "cancel_jobs")
    change_form_template = "admin/queue_app/job_change_form.html"
    fieldsets = (
        (None, {"fields": ("job_id", "job_type", "queue", "status_display", "priority")}),
        ("Attempts", {"fields": ("attempts", "max_attempts", "worker_id", "manual_retries")}),
        ("Times", {"fields": ("created_at", "started_at", "completed_at", "last_retried_at")}),
        ("Durations", {"fields": ("waited", "ran", "total")}),
        ("Data", {"fields": ("payload_json", "result_json", "error_text", "live_progress")}),
        ("Tracing and ownership", {"fields": ("trace", "owner", "organization")}),
        ("Consensus healing", {"fields": ("archived_at",)}),
        ("Ledger", {"fields": ("recorded_at", "ledger_entry")}),
    )

    class Media:
        css: ClassVar = {"all": ("queue_app/admin.css",)}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Show every field read-only: the ledger mirrors Redis."""
        fields = [field for block in self.fieldsets for field in block[1]["fields"]]
        return ["waiting_reasons", *fields]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """Put "Why is it not running?" first when the job waits for something."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not getattr(obj, "live_reasons", None):
            return fieldsets
        return [("Why is it not running?", {"fields": ("waiting_reasons",)}), *fieldsets]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Refuse: rows come from the ledger writer."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse edits; the detail page is read-only."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: a row is a copy of Redis; old rows go with the ledger retention."""
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Let users who may change ledger rows retry and cancel jobs."""
        return request.user.has_perm("queue_app.change_jobrecord")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[show.LiveChangeList]:
        """Use the change list that reads due times from Redis."""
        return show.LiveChangeList

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        """Return the row with its due time read from Redis."""
        record = super().get_object(request, object_id, from_field)
        if record is not None:
            show.read_due_times([record])
            show.read_reasons(record)
        return record

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[JobRecord], search_term: str
    ) -> tuple[QuerySet[JobRecord], bool]:
        """Match a job id by prefix (or exactly, when short) or a trace id exactly."""
        term = search_term.strip()
        if not term:
            return queryset, False
        by_id = Q(job_id__startswith=term) if len(term) >= MIN_PREFIX else Q(job_id=term)
        return queryset.filter(by_id | Q(trace_id=term.lower())), False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """Offer Retry or Cancel on the detail page, as the job's status allows."""
        record = self.get_object(request, object_id)
        allowed = record is not None and self.has_retry_permission(request)
        context = {
            **(extra_context or {}),
            "can_retry": allowed and record.status in RETRYABLE,
            "can_cancel": allowed and record.status in CANCELLABLE,
        }
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[Any]:
        """Add the POST URLs of the detail page's Retry and Cancel buttons."""
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        button_urls = [
            path(
                f"<path:object_id>/{verb}/",
                self.admin_site.admin_view(require_POST(self._button(verb))),
                name=f"{name}_{verb}",
            )
            for verb in ("retry", "cancel")
        ]
        return [*button_urls, *super().get_urls()]

    def _button(self, verb: str) -> Callable[..., HttpResponse]:
        def view(request: HttpRequest, object_id: str) -> HttpResponse:
            record = get_object_or_404(self.get_queryset(request), pk=object_id)
            back = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[record.pk]
            )
            if not self.has_retry_permission(request):
                self.message_user(request, f"You may not {verb} jobs.", messages.ERROR)
            else:
                act = jobs.retry_record if verb == "retry" else _cancel_record
                past = "retried" if verb == "retry" else "cancelled"
                _each_job(self, request, self.get_queryset(request).filter(pk=record.pk), past, act)
            return HttpResponseRedirect(back)

        return view

    @admin.display(description="job", ordering="job_id")
    def short_job_id(self, record: JobRecord) -> str:
        """Return the first characters of the job id (the full id is on the detail page)."""
        return show.short_id(record.job_id)

    @admin.display(description="status", ordering="status")
    def status_display(self, record: JobRecord) -> str:
        """Return the status badge ("delayed" for pending jobs waiting for their run time)."""
        return show.status_badge(record)

    @admin.display(description="reasons")
    def waiting_reasons(self, record: JobRecord) -> str:
        """Return why the job is not running, one reason per line."""
        return show.reason_list(getattr(record, "live_reasons", []))

    @admin.display(description="waited")
    def waited(self, record: JobRecord) -> str:
        """Return the time from enqueue to the start of the last attempt."""
        return show.duration(record.created_at, record.started_at)

    @admin.display(description="ran")
    def ran(self, record: JobRecord) -> str:
        """Return the run time of the last attempt."""
        return show.duration(record.started_at, record.completed_at)

    @admin.display(description="total")
    def total(self, record: JobRecord) -> str:
        """Return the time from enqueue to the end."""
        return show.duration(record.created_at, record.completed_at)

    @admin.display(description="payload")
    def payload_json(self, record: JobRecord) -> str:
        """Render the payload as indented JSON."""
        return show.pretty_json(record.payload)

    @admin.display(description="result")
    def result_json(self, record: JobRecord) -> str:
        """Render the result as indented JSON."""
        return show.pretty_json(record.result)

    @admin.display(description="error")
    def error_text(self, record: JobRecord) -> str:
        """Render the error (or traceback) in a monospace block."""
        return show.error_block(record.error)

    @admin.display(description="trace id")
    def trace(self, record: JobRecord) -> str:
        """Return the trace id, linked to the trace UI when one is configured."""
        return show.trace_link(record.trace_id)

    @admin.display(description="progress (live, from Redis)")
    def live_progress(self, record: JobRecord) -> str:
        """Render the progress the running job reports now (batch counts, debate rounds)."""
        try:
            job = jobs.get_job(scope.ADMIN, record.job_id)
        except JobNotFound:
            return "no longer in Redis"
        except QueueConnectionError as error:
            return f"queue unavailable: {error}"
        return show.pretty_json(job.progress) if job.progress is not None else "none reported"

    @admin.action(description="Retry selected jobs (new run from attempt 0)", permissions=["retry"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[JobRecord]) -> None:
        """Run failed or cancelled jobs again; re-enqueue a copy of jobs Redis forgot."""
        _each_job(self, request, queryset, "retried", jobs.retry_record)

    @admin.action(description="Cancel selected jobs", permissions=["retry"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[JobRecord]) -> None:
        """Cancel pending, retrying or running jobs."""
        _each_job(self, request, queryset, "cancelled", _cancel_record)


def _cancel_record(record: JobRecord) -> str:
    return jobs.cancel_job(scope.ADMIN, record.job_id).id


@admin.register(JobFailure)
class JobFailureAdmin(DeadLetterViews, JobRecordAdmin):
    """Failed jobs from the ledger, one row each, and the dead letters Redis holds right now."""

    list_display = (
        "short_job_id",
        "job_type",
        "queue",
        "attempts",
        "short_error",
        "completed_at",
        "manual_retries",
    )
    list_filter = ("queue", "job_type", "completed_at")
    actions = ("retry_jobs",)
    # Newest failure first, on the (status, completed_at, id) index.
    ordering = ("-completed_at", "-id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRecord]:
        """Return failed jobs only."""
        return super().get_queryset(request).filter(status=JobStatus.FAILED.value)

    @admin.display(description="error")
    def short_error(self, record: JobRecord) -> str:
        """Return the first 120 characters of the error."""
        return record.error[:120]


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(admin.ModelAdmin):
    """Which organization each API user belongs to."""

    list_display = ("user", "organization")
    search_fields = ("user__username", "organization")
    list_filter = ("organization",)
