"""How the admin shows jobs: short ids, status badges, durations, due times, errors, trace links.

The ledger row says ``pending`` for a job that waits for its run time; Redis knows when it is
due. ``LiveChangeList`` reads the due times of the rows on a page in one round trip, and
``StatusFilter`` offers "delayed" beside the ledger's statuses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from queue_app.models import STATUS_CHOICES, JobRecord
from queue_app.queue import JobStatus, QueueConnectionError
from queue_app.services import stats, waiting

#: Characters of a job id shown in lists (search takes any prefix).
SHORT_ID_LENGTH = 8
#: Statuses whose job may wait in Redis for a due time.
WAITING = (JobStatus.PENDING.value, JobStatus.RETRYING.value)
DELAYED = "delayed"


def short_id(job_id: str) -> str:
    """Return the first characters of a job id."""
    return job_id[:SHORT_ID_LENGTH]


def shown_status(record: JobRecord) -> str:
    """Return the status to show: ``delayed`` for a pending job that waits for its run time."""
    if record.status == JobStatus.PENDING.value and due_at(record) is not None:
        return DELAYED
    return record.status


def due_at(record: JobRecord) -> datetime | None:
    """Return when a delayed or retrying job runs, as read from Redis for this page."""
    when = getattr(record, "live_due_at", None)
    return None if when is None else datetime.fromtimestamp(when, tz=UTC)


def status_badge(record: JobRecord) -> SafeString:
    """Render the status as a coloured badge, with the run time of delayed and retrying jobs."""
    status = shown_status(record)
    badge = format_html('<span class="job-status job-status-{}">{}</span>', status, status)
    when = due_at(record)
    if when is None:
        return badge
    return format_html("{} runs at {}", badge, formats.localize(when))


def duration(start: datetime | None, end: datetime | None) -> str:
    """Return the time from ``start`` to ``end`` in words ("850 ms", "4 min 05 s"), or "-"."""
    if start is None or end is None:
        return "-"
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def pretty_json(value: Any) -> SafeString | str:
    """Render a JSON value indented, in a monospace block ("-" for none)."""
    if value is None:
        return "-"
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    return format_html('<pre class="job-block">{}</pre>', text)


def error_block(error: str) -> SafeString | str:
    """Render an error or traceback in a monospace block that keeps its indentation."""
    return format_html('<pre class="job-block job-error">{}</pre>', error) if error else "-"


def trace_link(trace_id: str) -> SafeString | str:
    """Link the trace id to the trace UI when ``ARAGORA_TRACE_URL`` is set."""
    if not trace_id:
        return "-"
    template = settings.ARAGORA_TRACE_URL
    if not template:
        return trace_id
    return format_html('<a href="{}">{}</a>', template.format(trace_id=trace_id), trace_id)


def read_due_times(records: list[JobRecord]) -> None:
    """Set ``live_due_at`` on each record (None unless Redis holds it for a due time)."""
    waiting = [(r.job_id, r.queue) for r in records if r.status in WAITING]
    try:
        due = stats.due_times(waiting)
    except QueueConnectionError:
        due = {}
    for record in records:
        record.live_due_at = due.get(record.job_id)  # type: ignore[attr-defined]


def read_reasons(record: JobRecord) -> None:
    """Set ``live_reasons``: why the job is not running, as Redis tells now (empty if unknown)."""
    try:
        reasons = waiting.why_not_running(record.job_id)
    except QueueConnectionError as error:
        reasons = [f"Queue unavailable: {error}"]
    record.live_reasons = reasons  # type: ignore[attr-defined]


def reason_list(reasons: list[str]) -> SafeString:
    """Render reasons as a list."""
    items = format_html_join("", '<li class="job-reason">{}</li>', ((r,) for r in reasons))
    return format_html('<ul class="job-reasons">{}</ul>', items)


class LiveChangeList(ChangeList):
    """The job list, with the due time of the delayed and retrying jobs on the page."""

    def get_results(self, request: HttpRequest) -> None:
        """Fetch the page, then read its due times from Redis in one round trip."""
        super().get_results(request)
        read_due_times(list(self.result_list))


class StatusFilter(admin.SimpleListFilter):
    """Filter by the ledger's status, or by "delayed" (pending jobs waiting for a run time)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer every status and "delayed"."""
        pending = JobStatus.PENDING.value
        choices = [(value, label) for value, label in STATUS_CHOICES]
        index = next(i for i, (value, _) in enumerate(choices) if value == pending)
        return [*choices[: index + 1], (DELAYED, "Delayed"), *choices[index + 1 :]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Keep the rows of the chosen status (delayed ones: as Redis lists them now)."""
        value = self.value()
        if not value:
            return queryset
        if value != DELAYED:
            return queryset.filter(status=value)
        try:
            ids = stats.delayed_ids()
        except QueueConnectionError:
            ids = []
        return queryset.filter(Q(status=JobStatus.PENDING.value) & Q(job_id__in=ids))
