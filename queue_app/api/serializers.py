"""Input validation (clear 400s naming the field) and response shapes of the queue API."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from queue_app.models import (
    EVENT_TYPES,
    MIN_SECRET_LENGTH,
    CircuitBreakerState,
    WebhookDelivery,
    WebhookEndpoint,
    check_webhook_target,
    from_timestamp,
    trace_id_of,
)
from queue_app.queue import InvalidJob, Job, JobNotFound, JobStatus, get_queue_config
from queue_app.queue.origin import ORIGIN_PLATFORMS, URL_PLATFORMS, DebateOrigin
from queue_app.services import jobs
from workers.batch import BATCH_JOB_TYPE, MAX_BATCH_ITEMS
from workers.gauntlet import INPUT_TYPES, JOB_TYPE_GAUNTLET, PROFILES
from workers.gauntlet.probes import MAX_CONTENT_CHARS, MAX_DURATION_SECONDS
from workers.routing.jobs import JOB_TYPES as ROUTING_JOB_TYPES
from workers.transcription.jobs import BACKEND_NAMES
from workers.transcription.jobs import JOB_TYPES as TRANSCRIPTION_JOB_TYPES
from workers.webhooks import check_secret, generate_secret

#: Queue names the library accepts.
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: Priority range of the API: > 0 is read before normal jobs, < 0 after them.
PRIORITY_RANGE = (-100, 100)
STATUSES = [status.value for status in JobStatus]


class StrictSerializer(serializers.Serializer):
    """A serializer that answers 400 for keys it does not know instead of ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        """Refuse unknown keys, then validate the known ones."""
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


class OriginSerializer(StrictSerializer):
    """Where a debate came from: its result is routed back there (``queue_app.queue.origin``)."""

    platform = serializers.ChoiceField(choices=ORIGIN_PLATFORMS)
    target = serializers.CharField(
        max_length=2000,
        help_text="Incoming-webhook URL (slack, discord, teams), chat id (telegram), "
        "endpoint id (webhook) or address (email).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the target for its platform; a webhook endpoint must be the caller's."""
        try:
            DebateOrigin(platform=attrs["platform"], target=attrs["target"])
            if attrs["platform"] in URL_PLATFORMS:
                check_webhook_target(attrs["target"])
        except InvalidJob as error:
            raise serializers.ValidationError({"target": [str(error)]}) from error
        except DjangoValidationError as error:
            raise serializers.ValidationError({"target": error.messages}) from error
        if attrs["platform"] == "webhook":
            endpoint = WebhookEndpoint.objects.filter(pk=int(attrs["target"])).first()
            scope = self.context.get("scope")
            if (
                endpoint is None
                or scope is None
                or not scope.allows(str(endpoint.owner_id or ""), endpoint.organization)
            ):
                raise serializers.ValidationError({"target": ["No such webhook endpoint."]})
        return attrs


class DebatePayloadSerializer(StrictSerializer):
    """Types of a debate payload; ``create_debate_job`` (``DebateJobPayload``) checks the values."""

    question = serializers.CharField(max_length=10_000)
    agents = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=20, required=False
    )
    rounds = serializers.IntegerField(required=False)
    consensus = serializers.CharField(max_length=32, required=False)
    protocol = serializers.CharField(max_length=64, required=False)
    timeout_seconds = serializers.IntegerField(required=False, allow_null=True)
    webhook_url = serializers.URLField(
        required=False, allow_null=True, validators=[check_webhook_target]
    )
    origin = OriginSerializer(required=False)


class TranscriptionPayloadSerializer(StrictSerializer):
    """Types of a transcription payload; ``create_transcription_job`` checks the values."""

    file_path = serializers.CharField(max_length=1000, required=False)
    file_data = serializers.CharField(required=False, trim_whitespace=False)
    file_extension = serializers.CharField(max_length=10, required=False)
    url = serializers.URLField(max_length=2000, required=False)
    language = serializers.CharField(max_length=16, required=False)
    backend = serializers.ChoiceField(choices=BACKEND_NAMES, required=False)
    use_cache = serializers.BooleanField(required=False)


class RoutingPayloadSerializer(StrictSerializer):
    """A routing payload; the debate must be one the caller may see."""

    debate_id = serializers.CharField(max_length=255)
    result = serializers.DictField(required=False)
    include_voice = serializers.BooleanField(required=False)
    recipient_email = serializers.EmailField(required=False)

    def validate_debate_id(self, value: str) -> str:
        """Refuse debates outside the caller's scope (as if they did not exist)."""
        try:
            jobs.get_job(self.context["scope"], value)
        except JobNotFound:
            raise serializers.ValidationError("No such debate job.") from None
        return value


class BatchPayloadSerializer(StrictSerializer):
    """A batch explanation: the debates to explain and the explainer's options."""

    debate_ids = serializers.ListField(
        child=serializers.CharField(max_length=255), min_length=1, max_length=MAX_BATCH_ITEMS
    )
    options = serializers.DictField(required=False)


class GauntletPayloadSerializer(StrictSerializer):
    """A stress test: the content, what it is, the auditors' persona and agents, the profile."""

    gauntlet_id = serializers.RegexField(QUEUE_NAME_PATTERN, required=False)
    input_content = serializers.CharField(max_length=MAX_CONTENT_CHARS, trim_whitespace=False)
    input_type = serializers.ChoiceField(choices=INPUT_TYPES, required=False)
    persona = serializers.CharField(max_length=500, required=False, allow_blank=True)
    agents = serializers.ListField(
        child=serializers.CharField(max_length=100), min_length=1, max_length=10, required=False
    )
    profile = serializers.ChoiceField(choices=list(PROFILES), required=False)
    max_duration_seconds = serializers.FloatField(
        min_value=1, max_value=MAX_DURATION_SECONDS, required=False
    )


#: Payload serializer of each job type the API accepts.
PAYLOAD_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "debate": DebatePayloadSerializer,
    **dict.fromkeys(TRANSCRIPTION_JOB_TYPES, TranscriptionPayloadSerializer),
    **dict.fromkeys(ROUTING_JOB_TYPES, RoutingPayloadSerializer),
    BATCH_JOB_TYPE: BatchPayloadSerializer,
    JOB_TYPE_GAUNTLET: GauntletPayloadSerializer,
}


def _payload_error(message: str, fields: set[str]) -> dict[str, Any]:
    """Put a library validation message under the payload field it names, if it names one."""
    field = message.split(" ", 1)[0]
    return {field: [message]} if field in fields else {"non_field_errors": [message]}


class JobCreateSerializer(StrictSerializer):
    """Body of ``POST jobs/``; ``validate`` builds the job (``validated_data["job"]``)."""

    job_type = serializers.CharField(
        max_length=64, help_text=f"Known types: {', '.join(sorted(PAYLOAD_SERIALIZERS))}."
    )
    payload = serializers.DictField(help_text="Input of the job, checked for its job type.")
    priority = serializers.IntegerField(
        default=0, min_value=PRIORITY_RANGE[0], max_value=PRIORITY_RANGE[1]
    )
    delay_seconds = serializers.FloatField(default=0, min_value=0)
    max_attempts = serializers.IntegerField(required=False, min_value=1, max_value=10)
    queue = serializers.RegexField(QUEUE_NAME_PATTERN, required=False)

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

    def validate_delay_seconds(self, value: float) -> float:
        """Keep delays shorter than the time Redis keeps a job."""
        ttl = get_queue_config().job_ttl_seconds
        if value >= ttl:
            raise serializers.ValidationError(f"Must be less than the job TTL ({ttl} s).")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the payload for its job type and build the job."""
        serializer = PAYLOAD_SERIALIZERS[attrs["job_type"]]
        payload = serializer(data=attrs["payload"], context=self.context)
        if not payload.is_valid():
            raise serializers.ValidationError({"payload": payload.errors})
        max_attempts = attrs.get("max_attempts") or get_queue_config().retry_max_attempts
        try:
            attrs["job"] = jobs.build_job(
                self.context["scope"],
                attrs["job_type"],
                dict(payload.validated_data),
                priority=attrs["priority"],
                max_attempts=max_attempts,
            )
        except InvalidJob as error:
            fields = set(payload.fields)
            raise serializers.ValidationError(
                {"payload": _payload_error(str(error), fields)}
            ) from error
        return attrs


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


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """A webhook endpoint; the signing secret is write-only.

    Without a ``secret``, creating an endpoint generates a ``whsec_`` one and returns it in that
    201 response only: the one time it can be read.
    """

    secret = serializers.CharField(
        write_only=True,
        required=False,
        min_length=MIN_SECRET_LENGTH,
        max_length=255,
        trim_whitespace=False,
        help_text=(
            "Signing secret, write-only (Standard Webhooks: whsec_<base64>). Left out on "
            "create, one is generated and returned in the 201 response only."
        ),
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1, required=False
    )
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
