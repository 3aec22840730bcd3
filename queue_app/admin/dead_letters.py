"""Dead letters on the failures page: retry one, or retry or discard them all after a confirmation.

Every failed job has one row in the ledger's failures list; the box above it adds only the dead
letters the ledger does not hold (yet), such as undecodable stream entries.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from queue_app.models import JobRecord, from_timestamp
from queue_app.queue import Job, JobNotFound, QueueConnectionError
from queue_app.services import jobs, scope, stats

#: Most dead letters read for the box, and acted on by "Retry all" / "Discard all".
DEAD_LETTER_LIMIT = 500
#: What each bulk action does, for its confirmation page and messages.
BULK = {
    "retry": ("Retry all dead letters", "run again from attempt 0"),
    "discard": ("Discard all dead letters", "no longer listed as dead letters (they stay failed)"),
}


class DeadLetterViews:
    """Mixin of the failures admin: the dead-letter box and its retry and discard views."""

    admin_site: Any
    message_user: Any
    has_retry_permission: Any

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Add the dead letters Redis holds now, and those missing from the ledger, to the page."""
        context = {**(extra_context or {})}
        try:
            dead = stats.dead_letters(limit=DEAD_LETTER_LIMIT)
        except QueueConnectionError as error:
            context["dead_letters_error"] = str(error)
        else:
            known = set(
                JobRecord.objects.filter(job_id__in=[job.id for job in dead]).values_list(
                    "job_id", flat=True
                )
            )
            context["dead_letter_count"] = len(dead)
            context["dead_letter_limit"] = DEAD_LETTER_LIMIT
            context["dead_letters"] = [
                {"job": job, "failed_at": from_timestamp(job.completed_at)}
                for job in dead
                if job.id not in known
            ]
        return super().changelist_view(request, context)  # type: ignore[misc]

    def get_urls(self) -> list[Any]:
        """Add the dead-letter URLs (POST to act; GET of a bulk URL asks for confirmation)."""
        view = self.admin_site.admin_view
        return [
            path(
                "dead-letters/<str:verb>-all/",
                view(self.bulk_dead_letters),
                name="queue_app_dead_letters_all",
            ),
            path(
                "dead-letters/<str:job_id>/retry/",
                view(self.retry_dead_letter),
                name="queue_app_retry_dead_letter",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def retry_dead_letter(self, request: HttpRequest, job_id: str) -> HttpResponse:
        """Retry one dead-lettered job (POST), then go back to the failures."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        if self._refused(request, "retry"):
            return _back()
        try:
            jobs.retry_job(scope.ADMIN, job_id)
        except (jobs.JobStateConflict, JobNotFound, QueueConnectionError) as error:
            self.message_user(request, f"Not retried: {error}", messages.WARNING)
        else:
            self.message_user(request, f"Retried {job_id}.", messages.SUCCESS)
        return _back()

    def bulk_dead_letters(self, request: HttpRequest, verb: str) -> HttpResponse:
        """Ask to confirm (GET), then retry or discard every dead letter (POST)."""
        if verb not in BULK:
            return HttpResponse(status=404)
        if self._refused(request, verb):
            return _back()
        try:
            dead = stats.dead_letters(limit=DEAD_LETTER_LIMIT)
            if request.method == "POST":
                self._bulk(request, verb, dead)
                return _back()
        except QueueConnectionError as error:
            self.message_user(request, f"Queue unavailable: {error}", messages.ERROR)
            return _back()
        title, effect = BULK[verb]
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "verb": verb,
            "effect": effect,
            "jobs": dead,
            "limit": DEAD_LETTER_LIMIT,
        }
        return render(request, "admin/queue_app/dead_letters_confirm.html", context)

    def _bulk(self, request: HttpRequest, verb: str, dead: list[Job]) -> None:
        if verb == "discard":
            count = jobs.discard_dead_letters(dead)
            self.message_user(request, f"Discarded {count} dead letter(s).", messages.SUCCESS)
            return
        done, refused = 0, 0
        for job in dead:
            try:
                jobs.retry_job(scope.ADMIN, job.id)
            except (jobs.JobStateConflict, JobNotFound):
                refused += 1
            else:
                done += 1
        self.message_user(request, f"Retried {done} dead letter(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{refused} could not be retried.", messages.WARNING)

    def _refused(self, request: HttpRequest, verb: str) -> bool:
        if self.has_retry_permission(request):
            return False
        self.message_user(request, f"You may not {verb} jobs.", messages.ERROR)
        return True


def _back() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:queue_app_jobfailure_changelist"))
