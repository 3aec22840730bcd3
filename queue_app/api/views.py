"""Thin views of the queue API: serializer -> services -> Response; QueueErrors -> HTTP."""

from __future__ import annotations

from typing import Any, ClassVar

from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView, exception_handler

from queue_app.api.bodies import CheckedBody
from queue_app.api.payloads import UnknownReference
from queue_app.api.permissions import InScope, scope_of, scoped_endpoints
from queue_app.api.quickcheck import quick_job
from queue_app.api.representation import job_representation
from queue_app.api.serializers import (
    JOB_CREATE,
    JobCreateSerializer,
    JobListQuerySerializer,
    JobPageSerializer,
    JobSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
)
from queue_app.api.throttles import EnqueueThrottle
from queue_app.models import WebhookEndpoint
from queue_app.queue import (
    InvalidJob,
    JobNotFound,
    JobStatus,
    QueueConnectionError,
    QueueError,
    QueueFull,
    UndeclaredQueue,
)
from queue_app.services import bulk, jobs, stats, webhook_events

#: Longest accepted Idempotency-Key.
IDEMPOTENCY_KEY_MAX = 255
#: ``Retry-After`` of 429 (queue full) and 503 (Redis unreachable) answers, in seconds.
RETRY_AFTER_SECONDS = 5
#: HTTP status of each error of the queue layer.
ERROR_STATUS: dict[type[QueueError], int] = {
    QueueFull: status.HTTP_429_TOO_MANY_REQUESTS,
    InvalidJob: status.HTTP_400_BAD_REQUEST,
    JobNotFound: status.HTTP_404_NOT_FOUND,
    jobs.JobStateConflict: status.HTTP_409_CONFLICT,
    jobs.IdempotencyConflict: status.HTTP_422_UNPROCESSABLE_ENTITY,
    bulk.BulkConflict: status.HTTP_422_UNPROCESSABLE_ENTITY,
    QueueConnectionError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def queue_exception_handler(error: Exception, context: dict[str, Any]) -> Response | None:
    """Answer QueueErrors with their HTTP status and ``{"detail": message}``; DRF does the rest.

    An undeclared queue is a 400 naming the field (``{"queue": [message]}``); a full queue is a
    429 and Redis unreachable a 503, both with ``Retry-After``.
    """
    if isinstance(error, UndeclaredQueue):
        return Response({"queue": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(error, QueueError):
        code = next((c for kind, c in ERROR_STATUS.items() if isinstance(error, kind)), None)
        if code is not None:
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if code in (429, 503) else None
            return Response({"detail": str(error)}, status=code, headers=headers)
    return exception_handler(error, context)


class QueueAPIView(CheckedBody, APIView):
    """Base of the queue views: size-limited JSON bodies and the QueueError handler."""

    #: Answers come from Redis: 503 when it is unreachable (QueueAutoSchema documents it).
    redis_backed = True

    permission_classes = (InScope,)

    def get_exception_handler(self) -> Any:
        """Use the queue's exception handler."""
        return queue_exception_handler


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable() or not key.isascii():
        raise exceptions.ValidationError(
            {"Idempotency-Key": [f"Use 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters."]}
        )
    return key


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": f"^[ -~]{{1,{IDEMPOTENCY_KEY_MAX}}}$"},
    OpenApiParameter.HEADER,
    description="Repeat a request safely: the same key and body return the first job (200); "
    "the same key with another body is refused (422).",
)
#: The body Swagger UI offers for ``POST jobs/``: valid as is, and free (offline demo agents).
DEBATE_EXAMPLE = OpenApiExample(
    "debate with demo agents",
    value={
        "job_type": "debate",
        "payload": {
            "question": "Is Redis a database?",
            "agents": ["demo-1", "demo-2", "demo-3"],
            "rounds": 2,
        },
        "priority": 0,
    },
    request_only=True,
)


class JobListView(QueueAPIView):
    """List jobs in the caller's scope, or enqueue one."""

    error_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"get": (400,), "post": (422, 429)}

    def get_throttles(self) -> list[Any]:
        """Limit enqueues (``ARAGORA_API_ENQUEUE_RATE``), not listings."""
        return [EnqueueThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        operation_id="queue_jobs_list",
        parameters=[JobListQuerySerializer],
        responses=JobPageSerializer,
    )
    def get(self, request: Request) -> Response:
        """List jobs, newest first, optionally of one status and queue."""
        query = JobListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        status_filter = JobStatus(params["status"]) if params.get("status") else None
        page = jobs.list_jobs(
            scope_of(request), status_filter, params.get("queue"), params["limit"], params["offset"]
        )
        return Response(
            {
                "count": page.count,
                "next": _page_url(request, params, page.has_more, +1),
                "previous": _page_url(request, params, params["offset"] > 0, -1),
                "results": [job_representation(job) for job in page.jobs],
            }
        )

    @extend_schema(
        request=JOB_CREATE,
        parameters=[IDEMPOTENCY_HEADER],
        examples=[DEBATE_EXAMPLE],
        responses={
            201: OpenApiResponse(JobSerializer, "Enqueued."),
            200: OpenApiResponse(JobSerializer, "Repeated Idempotency-Key: the first job."),
        },
    )
    def post(self, request: Request) -> Response:
        """Enqueue a job: 201 with the job, or 200 with the first job of a repeated key."""
        key = _idempotency_key(request)
        data = quick_job(request.data, scope_of(request))
        if data is None:  # not a plain debate: the serializer decides, and names the field
            body = JobCreateSerializer(data=request.data, context={"scope": scope_of(request)})
            body.is_valid(raise_exception=True)
            data = body.validated_data
        try:
            job, created = jobs.enqueue_job(
                scope_of(request),
                data["job"],
                queue=data.get("queue"),
                delay_seconds=data["delay_seconds"],
                idempotency_key=key,
            )
        except jobs.GauntletIdTaken as error:  # taken since the check: named as the check does
            raise UnknownReference({"payload": {"gauntlet_id": [str(error)]}}) from error
        location = request.build_absolute_uri(reverse("queue-api:job-detail", args=[job.id]))
        if created:
            return Response(job_representation(job), status=201, headers={"Location": location})
        return Response(
            job_representation(job), headers={"Location": location, "Idempotent-Replayed": "true"}
        )


def _page_url(request: Request, params: dict[str, Any], exists: bool, step: int) -> str | None:
    if not exists:
        return None
    url = request.build_absolute_uri()
    offset = max(0, params["offset"] + step * params["limit"])
    url = replace_query_param(url, "limit", params["limit"])
    if offset == 0:
        return remove_query_param(url, "offset")
    return replace_query_param(url, "offset", offset)


class JobDetailView(QueueAPIView):
    """One job."""

    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        """Return the job; 404 when unknown, expired or of another organization."""
        return Response(job_representation(jobs.get_job(scope_of(request), job_id)))


class JobCancelView(QueueAPIView):
    """Cancel one job."""

    error_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"post": (409,)}

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request: Request, job_id: str) -> Response:
        """Cancel an unfinished job; 409 once it finished."""
        return Response(job_representation(jobs.cancel_job(scope_of(request), job_id)))


class JobRetryView(QueueAPIView):
    """Retry one job."""

    error_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"post": (409,)}

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request: Request, job_id: str) -> Response:
        """Run a failed or cancelled job again from attempt 0; 409 for other statuses."""
        return Response(job_representation(jobs.retry_job(scope_of(request), job_id)))


class StatsView(QueueAPIView):
    """Statistics of every queue."""

    @extend_schema(
        responses=inline_serializer(
            "QueueStats", {"queues": serializers.DictField(child=serializers.DictField())}
        )
    )
    def get(self, request: Request) -> Response:
        """Return stream length, pending, delayed, dead letters and counts per status, by queue."""
        return Response({"queues": stats.queue_stats()})


class WorkersView(QueueAPIView):
    """Live workers."""

    @extend_schema(
        responses=inline_serializer(
            "Workers", {"workers": serializers.ListField(child=serializers.DictField())}
        )
    )
    def get(self, request: Request) -> Response:
        """Return the live workers with their queues, active jobs and heartbeat age."""
        return Response({"workers": stats.list_workers()})


class EndpointPagination(LimitOffsetPagination):
    """``limit``/``offset`` pages of 50 (at most 200), as for jobs; bad values are 400."""

    default_limit = 50
    max_limit = 200

    def get_limit(self, request: Request) -> int:
        """Return ``limit`` (1 to 200), 400 when it is anything else."""
        return _query_int(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        """Return ``offset`` (0 or more), 400 when it is anything else."""
        return _query_int(request, self.offset_query_param, 0, 0, None)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """Document the bounds of ``limit`` and ``offset``."""
        parameters = super().get_schema_operation_parameters(view)
        bounds = {"limit": {"minimum": 1, "maximum": self.max_limit}, "offset": {"minimum": 0}}
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


def _query_int(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    values = request.query_params.getlist(name)
    if not values:
        return default
    raw = values[-1]
    top = "" if high is None else f" and {high}"
    if len(values) > 1 or not raw.isdigit() or int(raw) < low or (high and int(raw) > high):
        raise exceptions.ValidationError({name: [f"Give one integer between {low}{top}."]})
    return int(raw)


class WebhookEndpointViewSet(CheckedBody, viewsets.ModelViewSet):
    """Webhook endpoints of the caller (all of them for staff); secrets are write-only."""

    #: Actions that enqueue a job: 503 when Redis is unreachable (QueueAutoSchema documents it).
    redis_actions = frozenset({"send_test", "redeliver"})

    serializer_class = WebhookEndpointSerializer
    permission_classes = (InScope,)
    pagination_class = EndpointPagination
    http_method_names = ("get", "post", "patch", "delete", "head", "options")

    def get_exception_handler(self) -> Any:
        """Use the queue's exception handler."""
        return queue_exception_handler

    def get_queryset(self) -> Any:
        """Return the endpoints in the caller's scope."""
        if getattr(self, "swagger_fake_view", False):  # schema generation, no caller
            return WebhookEndpoint.objects.none()
        return scoped_endpoints(self.request)

    def perform_create(self, serializer: Any) -> None:
        """Give the endpoint to the caller and its organization."""
        serializer.save(owner=self.request.user, organization=scope_of(self.request).organization)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request: Request, pk: str | None = None) -> Response:
        """Enqueue a ``webhook.test`` event to the endpoint; 202 with the delivery job."""
        job = webhook_events.send_test_event(self.get_object())
        return Response(job_representation(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """List the endpoint's delivery attempts, newest first."""
        attempts = self.get_object().deliveries.order_by("-delivered_at", "-pk")
        page = self.paginate_queryset(attempts)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[0-9]+)/redeliver",
    )
    def redeliver(self, request: Request, pk: str | None = None, delivery_id: str = "") -> Response:
        """Deliver the event of a past attempt again (same ``webhook-id``); 202 with the job."""
        delivery = get_object_or_404(self.get_object().deliveries, pk=int(delivery_id))
        job = webhook_events.redeliver(delivery)
        return Response(job_representation(job), status=status.HTTP_202_ACCEPTED)
