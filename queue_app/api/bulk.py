"""``POST jobs/bulk/``: up to 1,000 jobs in one request, checked as ``POST jobs/`` and enqueued
together, all of them or none."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from queue_app.api.payloads import StrictSerializer, UnknownReference
from queue_app.api.permissions import scope_of
from queue_app.api.quickcheck import quick_job
from queue_app.api.serializers import JOB_CREATE, JobCreateSerializer
from queue_app.api.throttles import EnqueueThrottle
from queue_app.api.views import QueueAPIView
from queue_app.services.bulk import BulkEntry, BulkIdsTaken, enqueue_together

#: Most jobs in one bulk request.
BULK_MAX_JOBS = 1000


class BulkJobsSerializer(serializers.ListSerializer):
    """The jobs of a bulk request; DRF names a refused job by its index (``{"3": errors}``),
    and so does a 422 (``UnknownReference``) of one job."""

    def to_internal_value(self, data: Any) -> Any:
        """Validate the jobs in order, counting them for ``run_child_validation``."""
        self.position = 0
        return super().to_internal_value(data)

    def run_child_validation(self, data: Any) -> Any:
        """Validate one job (a plain debate without the serializer); put its index on a 422."""
        index, self.position = self.position, self.position + 1
        quick = quick_job(data, self.context["scope"])
        if quick is not None:
            return quick
        try:
            return super().run_child_validation(data)
        except UnknownReference as error:
            raise UnknownReference({"jobs": {str(index): error.detail}}) from error


class JobBulkCreateSerializer(StrictSerializer):
    """Body of ``POST jobs/bulk/``: 1 to 1,000 bodies of ``POST jobs/``."""

    jobs = BulkJobsSerializer(child=JobCreateSerializer(), min_length=1, max_length=BULK_MAX_JOBS)


class JobBulkCreatedSerializer(serializers.Serializer):
    """The ids of the enqueued jobs, in the order of the request."""

    count = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.CharField())


#: The body as the schema states it: each job one of the shapes of ``POST jobs/``.
JOB_BULK_CREATE = type(
    "JobBulkCreate",
    (serializers.Serializer,),
    {
        "__doc__": f"Body of ``POST jobs/bulk/``: 1 to {BULK_MAX_JOBS} jobs.",
        "jobs": serializers.ListField(
            child=PolymorphicProxySerializer(
                component_name="JobCreate",
                serializers=JOB_CREATE.serializers,
                resource_type_field_name=None,
            ),
            min_length=1,
            max_length=BULK_MAX_JOBS,
        ),
    },
)


class BulkEnqueueThrottle(EnqueueThrottle):
    """``ARAGORA_API_ENQUEUE_RATE`` for bulk requests: one counts as many enqueues as it holds
    jobs, at most a whole window's worth (so that a bulk request is never refused forever)."""

    #: Enqueues the current request counts as.
    cost = 1

    def allow_request(self, request: Request, view: Any) -> bool:
        """Weigh the request by its jobs, then apply the rate."""
        data = request.data
        jobs = data.get("jobs") if isinstance(data, dict) else None
        self.cost = max(1, len(jobs)) if isinstance(jobs, list) else 1
        return bool(super().allow_request(request, view))

    def throttle_success(self) -> bool:
        """Record ``cost`` enqueues, or refuse when they do not fit in the window."""
        cost = min(self.cost, self.num_requests)
        if len(self.history) + cost > self.num_requests:
            return bool(self.throttle_failure())
        self.history[:0] = [self.now] * cost
        self.cache.set(self.key, self.history, self.duration)
        return True


class JobBulkView(QueueAPIView):
    """Enqueue up to 1,000 jobs at once: all of them, or none."""

    error_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"post": (422, 429)}
    throttle_classes = (BulkEnqueueThrottle,)

    @extend_schema(
        operation_id="queue_jobs_bulk_create",
        request=JOB_BULK_CREATE,
        responses={201: OpenApiResponse(JobBulkCreatedSerializer, "All jobs enqueued.")},
    )
    def post(self, request: Request) -> Response:
        """Enqueue 1 to 1,000 jobs, each as the body of ``POST jobs/``: all of them, or none.

        A refused job is named by its index (``{"jobs": {"3": {"payload": ...}}}``) and nothing
        is enqueued. The jobs must go to one queue (else 422): they are added by one atomic
        step, and a queue at its depth limit refuses them all (429). ``Idempotency-Key`` is
        not supported here.
        """
        body = JobBulkCreateSerializer(data=request.data, context={"scope": scope_of(request)})
        body.is_valid(raise_exception=True)
        entries = [
            BulkEntry(item["job"], item.get("queue"), item["delay_seconds"])
            for item in body.validated_data["jobs"]
        ]
        try:
            ids = [job.id for job in enqueue_together(entries)]
        except BulkIdsTaken as error:  # taken since the check: named as the check names them
            taken = {str(index): _taken(job_id) for index, job_id in error.taken.items()}
            raise UnknownReference({"jobs": taken}) from error
        return Response({"count": len(ids), "ids": ids}, status=201)


def _taken(job_id: str) -> dict[str, Any]:
    """Return the error of a job whose id (its gauntlet id) another job has."""
    return {"payload": {"gauntlet_id": [f"gauntlet_id {job_id!r} is taken"]}}
