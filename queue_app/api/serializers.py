"""Input validation (clear 400s naming the field) and response shapes of the queue API."""

from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator, RegexValidator
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from queue_app.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)
from queue_app.api.payloads import (
    PAYLOAD_SERIALIZERS,
    TRANSCRIPTION_SOURCES,
    BatchPayloadSerializer,
    DebatePayloadSerializer,
    GauntletPayloadSerializer,
    RefuseUnknownKeys,
    RoutingEmailPayload,
    RoutingPayloadSerializer,
    StrictSerializer,
    UnknownReference,
    url_field,
)
from queue_app.models import (
    EVENT_TYPES,
    MIN_SECRET_LENGTH,
    CircuitBreakerState,
    WebhookDelivery,
    WebhookEndpoint,
    from_timestamp,
    trace_id_of,
)
from queue_app.queue import InvalidJob, Job, JobStatus, get_queue_config
from queue_app.services import jobs
from workers.batch import BATCH_JOB_TYPE
from workers.gauntlet import JOB_TYPE_GAUNTLET
from workers.routing.jobs import JOB_TYPE_ROUTING_EMAIL
from workers.routing.jobs import JOB_TYPES as ROUTING_JOB_TYPES
from workers.transcription.jobs import JOB_TYPE_TRANSCRIPTION_YOUTUBE
from workers.transcription.jobs import JOB_TYPES as TRANSCRIPTION_JOB_TYPES
from workers.webhooks import check_secret, generate_secret

#: Queue names the library accepts.
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: Priority range of the API: > 0 is read before normal jobs, < 0 after them.
PRIORITY_RANGE = (-100, 100)
STATUSES = [status.value for status in JobStatus]
#: Webhook signing secrets: 16+ characters, or ``whsec_`` and base64 of 24+ bytes (no NUL).
SECRET_PATTERN = (
    r"^((?!whsec_)[^\x00]{16,255}"
    r"|whsec_([A-Za-z0-9+/]{4}){8,61}([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$"
)


def _payload_error(message: str, fields: set[str]) -> dict[str, Any]:
    """Put a library validation message under the payload field it names, if it names one."""
    field = message.split(" ", 1)[0]
    return {field: [message]} if field in fields else {"non_field_errors": [message]}


class JobOptionsSerializer(StrictSerializer):
    """The options of ``POST jobs/`` that every job type shares."""

    priority = StrictIntegerField(
        default=0, min_value=PRIORITY_RANGE[0], max_value=PRIORITY_RANGE[1]
    )
    delay_seconds = StrictFloatField(
        default=0,
        min_value=0,
        help_text="Seconds before the job is due; less than the job TTL (max_job_ttl_days).",
    )
    max_attempts = StrictIntegerField(required=False, min_value=1, max_value=10)
    queue = StrictCharField(
        required=False,
        validators=[RegexValidator(QUEUE_NAME_PATTERN, "Use 1 to 64 of A-Z a-z 0-9 _ . -")],
    )

    def get_fields(self) -> dict[str, Any]:
        """Bound ``delay_seconds`` by the job TTL, and list the declared queues in the schema."""
        fields = super().get_fields()
        config = get_queue_config()
        if config.queues is not None:  # the schema lists them; others are refused the same
            declared = ", ".join(sorted(config.queues))
            message = f"Unknown queue '{{input}}'; declared: {declared}."
            fields["queue"] = serializers.ChoiceField(
                choices=sorted(config.queues),
                required=False,
                error_messages={"invalid_choice": message},
            )
        ttl = config.job_ttl_seconds
        delay = fields["delay_seconds"]
        delay.max_value = ttl - 1
        delay.validators.append(
            MaxValueValidator(ttl - 1, f"Must be less than the job TTL ({ttl} s).")
        )
        return fields


class JobCreateSerializer(JobOptionsSerializer):
    """Body of ``POST jobs/``; ``validate`` builds the job (``validated_data["job"]``)."""

    job_type = StrictCharField(
        max_length=64, help_text=f"Known types: {', '.join(sorted(PAYLOAD_SERIALIZERS))}."
    )
    payload = serializers.DictField(help_text="Input of the job, checked for its job type.")

    def validate_job_type(self, value: str) -> str:
        """Accept only the job types the API knows how to validate."""
        if value not in PAYLOAD_SERIALIZERS:
            known = ", ".join(sorted(PAYLOAD_SERIALIZERS))
            raise serializers.ValidationError(f"Unknown job type {value!r}; known: {known}.")
        return value

    def validate_queue(self, value: str) -> str:
        """Accept only declared queues (worker kinds, django.tasks queues, ``ARAGORA_QUEUES``)."""
        config = get_queue_config()
        if not config.declares(value):
            declared = ", ".join(sorted(config.queues or ()))
            raise serializers.ValidationError(f"Unknown queue {value!r}; declared: {declared}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the payload for its job type and build the job."""
        payload = self._payload_serializer(attrs["job_type"])
        try:
            data = payload.run_validation(attrs["payload"])
        except UnknownReference as error:
            raise UnknownReference({"payload": error.detail}) from error
        except serializers.ValidationError as error:
            raise serializers.ValidationError({"payload": error.detail}) from error
        max_attempts = attrs.get("max_attempts") or get_queue_config().retry_max_attempts
        try:
            attrs["job"] = jobs.build_job(
                self.context["scope"],
                attrs["job_type"],
                dict(data),
                priority=attrs["priority"],
                max_attempts=max_attempts,
            )
        except jobs.UnknownDebate as error:
            raise UnknownReference({"payload": {"debate_ids": [str(error)]}}) from error
        except jobs.GauntletIdTaken as error:
            raise UnknownReference({"payload": {"gauntlet_id": [str(error)]}}) from error
        except InvalidJob as error:
            fields = set(payload.fields)
            raise serializers.ValidationError(
                {"payload": _payload_error(str(error), fields)}
            ) from error
        return attrs

    def _payload_serializer(self, job_type: str) -> serializers.Serializer:
        """Return the payload serializer of ``job_type``, built once per request (bulk: once
        for all its jobs of that type; building one copies all its fields)."""
        built: dict[str, serializers.Serializer] = self.context.setdefault("payloads", {})
        if job_type not in built:
            context = {**self.context, "job_type": job_type}
            built[job_type] = PAYLOAD_SERIALIZERS[job_type](context=context)
        return built[job_type]


def _job_create(name: str, job_types: list[str], payload: Any) -> type[JobOptionsSerializer]:
    """Return the schema's view of ``POST jobs/`` for ``job_types`` (validation: JobCreate)."""
    fields = {"job_type": serializers.ChoiceField(choices=job_types), "payload": payload}
    doc = f"``POST jobs/`` for {', '.join(job_types)}."
    return type(name, (JobOptionsSerializer,), {**fields, "__doc__": doc})


def _sources(name: str, sources: list[type[serializers.Serializer]]) -> Any:
    return PolymorphicProxySerializer(
        component_name=name, serializers=sources, resource_type_field_name=None
    )


_TRANSCRIBE = [t for t in TRANSCRIPTION_JOB_TYPES if t != JOB_TYPE_TRANSCRIPTION_YOUTUBE]
_ROUTE = [t for t in ROUTING_JOB_TYPES if t != JOB_TYPE_ROUTING_EMAIL]
#: The body of ``POST jobs/`` as the schema states it: one shape per group of job types.
JOB_CREATE = PolymorphicProxySerializer(
    component_name="JobCreate",
    serializers=[
        _job_create("DebateJobCreate", ["debate"], DebatePayloadSerializer()),
        _job_create(
            "TranscriptionJobCreate",
            _TRANSCRIBE,
            _sources("TranscriptionPayload", list(TRANSCRIPTION_SOURCES.values())),
        ),
        _job_create(
            "YoutubeJobCreate",
            [JOB_TYPE_TRANSCRIPTION_YOUTUBE],
            TRANSCRIPTION_SOURCES["url"](),
        ),
        _job_create("RoutingJobCreate", _ROUTE, RoutingPayloadSerializer()),
        _job_create("RoutingEmailJobCreate", [JOB_TYPE_ROUTING_EMAIL], RoutingEmailPayload()),
        _job_create("BatchJobCreate", [BATCH_JOB_TYPE], BatchPayloadSerializer()),
        _job_create("GauntletJobCreate", [JOB_TYPE_GAUNTLET], GauntletPayloadSerializer()),
    ],
    resource_type_field_name=None,
)


class TimestampField(serializers.DateTimeField):
    """A Unix timestamp of the library, shown as an ISO 8601 date-time."""

    def to_representation(self, value: Any) -> Any:
        """Render the timestamp as ISO 8601 (UTC)."""
        return super().to_representation(from_timestamp(value))


class JobSerializer(serializers.Serializer):
    """A job as Redis has it now."""

    id = serializers.CharField()
    status = serializers.ChoiceField(choices=STATUSES)
    job_type = serializers.CharField()
    queue = serializers.CharField(allow_null=True)
    priority = serializers.IntegerField()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    created_at = TimestampField()
    started_at = TimestampField(allow_null=True)
    completed_at = TimestampField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    result = serializers.JSONField(allow_null=True)
    progress = serializers.JSONField(allow_null=True, default=None)
    worker_id = serializers.CharField(allow_null=True)
    trace_id = serializers.SerializerMethodField()
    payload = serializers.JSONField()

    def get_trace_id(self, job: Job) -> str:
        """Return the W3C trace id the job carries ("" without one)."""
        return trace_id_of(job)


class JobPageSerializer(serializers.Serializer):
    """A page of jobs; ``count`` is null when knowing it would need a full scan."""

    count = serializers.IntegerField(allow_null=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = JobSerializer(many=True)


class JobListQuerySerializer(serializers.Serializer):
    """Query string of ``GET jobs/`` (other parameters are ignored)."""

    status = serializers.ChoiceField(choices=STATUSES, required=False)
    queue = serializers.RegexField(QUEUE_NAME_PATTERN, required=False)
    limit = serializers.IntegerField(default=50, min_value=1, max_value=200)
    offset = serializers.IntegerField(default=0, min_value=0, max_value=jobs.MAX_OFFSET)


class CircuitSerializer(serializers.ModelSerializer):
    """Circuit breaker state of an endpoint (read-only)."""

    class Meta:
        model = CircuitBreakerState
        fields = ("state", "failure_count", "opened_at", "next_attempt_at")
        read_only_fields = fields


#: Delivery health of an endpoint, kept up to date by the delivery worker.
HEALTH_FIELDS = (
    "consecutive_failures",
    "success_count",
    "failure_count",
    "last_success_at",
    "last_failure_at",
)


class WebhookEndpointSerializer(RefuseUnknownKeys, serializers.ModelSerializer):
    """A webhook endpoint; the signing secret is write-only.

    Without a ``secret``, creating an endpoint generates a ``whsec_`` one and returns it in that
    201 response only: the one time it can be read.
    """

    url = url_field(help_text="Target URL (http or https, a public address).")
    secret = StrictCharField(
        write_only=True,
        required=False,
        min_length=MIN_SECRET_LENGTH,
        max_length=255,
        trim_whitespace=False,
        validators=[
            RegexValidator(SECRET_PATTERN, "Use 16 to 255 characters, or whsec_ and base64.")
        ],
        help_text=(
            "Signing secret, write-only (Standard Webhooks: whsec_<base64>). Left out on "
            "create, one is generated and returned in the 201 response only."
        ),
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1, required=False
    )
    is_active = StrictBooleanField(required=False)
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    circuit = CircuitSerializer(read_only=True)

    class Meta:
        model = WebhookEndpoint
        read_only_fields = (
            "kind",
            "organization",
            "deactivated_reason",
            "created_at",
            "updated_at",
            *HEALTH_FIELDS,
        )
        fields = ("id", "url", "secret", "event_types", "is_active", "owner", "circuit")
        fields += read_only_fields

    def validate_secret(self, value: str) -> str:
        """Refuse a ``whsec_`` secret that is not base64 of 24 bytes or more."""
        try:
            check_secret(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Generate a secret when an endpoint is created without one."""
        if self.instance is None and not attrs.get("secret"):
            attrs["secret"] = self._generated = generate_secret()
        return attrs

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        """Add the generated secret to the response that created the endpoint, only."""
        data: dict[str, Any] = super().to_representation(instance)
        generated = getattr(self, "_generated", None)
        if generated:
            data["secret"] = generated
        return data


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """One delivery attempt of the endpoint's log (read-only)."""

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "event",
            "job_id",
            "delivery_id",
            "attempt",
            "status_code",
            "duration_seconds",
            "response_excerpt",
            "error",
            "delivered_at",
            "succeeded",
        )
        read_only_fields = fields
