"""Models of the Django layer: webhook endpoints, circuit state, the job ledger, deliveries.

Redis stays the source of truth for live jobs; ``JobRecord`` is the ledger the admin reads,
filled off the hot path by ``queue_app.stores.ledger_writer.LedgerWriter``. Webhook signing
secrets are stored encrypted (``ARAGORA_WEBHOOK_SECRET_KEYS``, read by ``queue_app.conf``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from queue_app.queue import Job, JobStatus, get_queue_config
from workers.webhooks import SecretCipher, TargetRefused, check_target

#: Events a webhook endpoint can subscribe to: job transitions
#: (``queue_app.stores.transition_events``), transcriptions (``queue_app.stores.job_events``)
#: and consensus healing (``debate.healing_needed``, ``debate.escalated``).
EVENT_TYPES = (
    "job.completed",
    "job.failed",
    "job.dead_lettered",
    "job.cancelled",
    "job.retrying",
    "debate.completed",
    "transcription.started",
    "transcription.completed",
    "transcription.failed",
    "debate.healing_needed",
    "debate.escalated",
)
#: Job statuses as Django choices (the values of the library's ``JobStatus``).
STATUS_CHOICES = [(status.value, status.value.title()) for status in JobStatus]
#: Shortest accepted webhook signing secret.
MIN_SECRET_LENGTH = 16


def default_event_types() -> list[str]:
    """Return the events a new endpoint subscribes to: finished jobs."""
    return ["job.completed", "job.failed"]


def secret_cipher() -> SecretCipher:
    """Return the cipher of stored webhook secrets (keys of the installed queue config)."""
    return SecretCipher(get_queue_config().webhook_secret_keys)


def from_timestamp(value: float | None) -> datetime | None:
    """Turn a Unix timestamp of the queue library into an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def trace_id_of(job: Job) -> str:
    """Return the W3C trace id carried by the job's ``traceparent``, or ""."""
    return trace_id_in(job.metadata)


def trace_id_in(metadata: dict[str, Any]) -> str:
    """Return the W3C trace id carried by the ``traceparent`` of job metadata, or ""."""
    context = metadata.get("trace_context")
    traceparent = context.get("traceparent", "") if isinstance(context, dict) else ""
    parts = str(traceparent).split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


def job_record_fields(job: Job) -> dict[str, Any]:
    """Return the ``JobRecord`` columns that describe ``job`` as Redis has it."""
    meta = job.metadata
    return {
        "queue": job.queue or "",
        "job_type": str(meta.get("job_type") or ""),
        "status": job.status.value,
        "payload": job.payload,
        "result": job.result,
        "error": job.error or "",
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "worker_id": job.worker_id or "",
        "trace_id": trace_id_of(job),
        "owner": str(meta.get("owner") or ""),
        "organization": str(meta.get("organization") or ""),
        "created_at": from_timestamp(job.created_at),
        "started_at": from_timestamp(job.started_at),
        "completed_at": from_timestamp(job.completed_at),
    }


def check_event_types(value: Any) -> None:
    """Refuse anything but a non-empty list of known event types."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Give a non-empty list of event types.")
    unknown = sorted({str(item) for item in value} - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(
            f"Unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}."
        )


def check_webhook_target(url: str) -> None:
    """Refuse non-HTTP URLs, and private or loopback targets unless the setting allows them.

    Only literal addresses and ``localhost`` names are checked here; the delivery worker checks
    the resolved addresses again at delivery time (DNS may change after saving).
    """
    try:
        check_target(url, getattr(settings, "ARAGORA_WEBHOOK_ALLOW_PRIVATE", False))
    except TargetRefused as error:
        message = str(error)
        raise ValidationError(message[:1].upper() + message[1:] + ".") from None


class OrganizationMembership(models.Model):
    """Attach a user to the organization whose jobs and endpoints they may see."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_membership"
    )
    organization = models.CharField(max_length=100, db_index=True)

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization}"


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    """Queries of webhook endpoints."""

    def in_scope(self, organizations: Iterable[str], owners: Iterable[str]) -> Any:
        """Return the active endpoints of ``organizations`` or of users ``owners`` (pks)."""
        orgs = [org for org in organizations if org]
        users = [int(owner) for owner in owners if str(owner).isdigit()]
        if not orgs and not users:
            return self.none()
        return self.filter(
            Q(organization__in=orgs) | Q(owner_id__in=users), is_active=True
        ).order_by("pk")


class WebhookEndpoint(models.Model):
    """A URL that receives signed job events, with its delivery health."""

    class Kind(models.TextChoices):
        ENDPOINT = "endpoint"
        #: A debate's ``webhook_url``: gets its ``debate.completed``, signed with the secret of
        #: the debate's organization (``SigningSecret``).
        CALLBACK = "callback"

    url = models.URLField(max_length=2000, validators=[check_webhook_target])
    #: The signing secret as a Fernet token; set and read through ``secret`` (write-only in the
    #: admin and the API, never shown after saving).
    secret_encrypted = models.TextField(blank=True, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ENDPOINT)
    event_types = models.JSONField(default=default_event_types, validators=[check_event_types])
    is_active = models.BooleanField(default=True)
    #: Why deliveries stopped, when the worker stopped them (``answered 410 Gone``).
    deactivated_reason = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    organization = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: Health, updated by the delivery worker.
    consecutive_failures = models.PositiveIntegerField(default=0)
    success_count = models.PositiveBigIntegerField(default=0)
    failure_count = models.PositiveBigIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        """Return the signing secret, decrypted ("" for callbacks: theirs is the organization's)."""
        return secret_cipher().decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = secret_cipher().encrypt(value)

    def signing_secret(self) -> str | None:
        """Return the secret deliveries are signed with (None: a callback without one)."""
        if self.kind == self.Kind.CALLBACK:
            return SigningSecret.of_organization(self.organization)
        return self.secret

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, and give a new endpoint its closed circuit breaker."""
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            CircuitBreakerState.objects.get_or_create(endpoint=self)

    def reset_circuit(self) -> None:
        """Close the circuit and forget the current run of failures."""
        CircuitBreakerState.objects.update_or_create(
            endpoint=self,
            defaults={
                "state": CircuitBreakerState.State.CLOSED,
                "failure_count": 0,
                "opened_at": None,
                "next_attempt_at": None,
            },
        )
        self.consecutive_failures = 0
        self.save(update_fields=["consecutive_failures", "updated_at"])


class SigningSecret(models.Model):
    """The secret that signs callbacks (debate ``webhook_url``) of an organization, or the site's.

    The row with an empty organization is the site's: it signs callbacks of organizations
    without their own, and of jobs of no organization.
    """

    organization = models.CharField(max_length=100, unique=True, blank=True)
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "callback signing secret"

    def __str__(self) -> str:
        return self.organization or "(site)"

    @property
    def secret(self) -> str:
        """Return the secret, decrypted."""
        return secret_cipher().decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = secret_cipher().encrypt(value)

    @classmethod
    def of_organization(cls, organization: str) -> str | None:
        """Return the secret of ``organization``, else the site's, else None."""
        rows = {
            row.organization: row for row in cls.objects.filter(organization__in={organization, ""})
        }
        row = rows.get(organization) or rows.get("")
        return None if row is None else row.secret


class CircuitBreakerState(models.Model):
    """The circuit breaker of one endpoint: open circuits skip deliveries until next_attempt_at."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open", "Half open"

    endpoint = models.OneToOneField(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="circuit"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.CLOSED)
    failure_count = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "circuit breaker state"

    def __str__(self) -> str:
        return f"{self.endpoint_id}: {self.state}"


class JobRecord(models.Model):
    """One job in the ledger: its last known state, as drained from the Redis event streams."""

    job_id = models.CharField(max_length=255, unique=True)
    queue = models.CharField(max_length=64, db_index=True)
    job_type = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=0)
    priority = models.IntegerField(default=0)
    worker_id = models.CharField(max_length=255, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, db_index=True)
    #: Who enqueued it (user pk as text) and for which organization; from job metadata.
    owner = models.CharField(max_length=64, blank=True)
    organization = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    #: Last ledger write, and the event stream entry it came from (older entries never win).
    recorded_at = models.DateTimeField(default=timezone.now, db_index=True)
    ledger_entry = models.CharField(max_length=64, blank=True)
    #: ``ledger_entry`` (``<ms>-<seq>``) as numbers, which the ledger's upsert compares in SQL.
    ledger_ms = models.BigIntegerField(default=-1)
    ledger_seq = models.BigIntegerField(default=-1)
    #: Retries asked for by people (admin or API), each one a new run from attempt 0.
    manual_retries = models.PositiveIntegerField(default=0)
    last_retried_at = models.DateTimeField(null=True, blank=True)
    #: When consensus healing gave the debate up (its ARCHIVE action); never healed again.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        # The admin's orderings (all jobs newest first, failures newest first) and id search.
        indexes = (
            models.Index(fields=("-created_at", "-id"), name="jobrecord_newest"),
            models.Index(fields=("status", "-completed_at", "-id"), name="jobrecord_status_done"),
            # The admin searches job ids by prefix (LIKE 'abc%'): PostgreSQL needs this opclass
            # to use an index for it; other databases ignore the opclass.
            models.Index(
                fields=("job_id",),
                name="jobrecord_job_id_prefix",
                opclasses=("varchar_pattern_ops",),
            ),
        )

    def __str__(self) -> str:
        return self.job_id

    def to_job(self) -> Job:
        """Return the job as the ledger last recorded it (for workers reading history)."""

        def stamp(value: datetime | None) -> float | None:
            return value.timestamp() if value is not None else None

        return Job(
            payload=dict(self.payload or {}),
            id=self.job_id,
            status=JobStatus(self.status),
            created_at=stamp(self.created_at) or self.recorded_at.timestamp(),
            started_at=stamp(self.started_at),
            completed_at=stamp(self.completed_at),
            attempts=self.attempts,
            max_attempts=self.max_attempts,
            error=self.error or None,
            worker_id=self.worker_id or None,
            priority=self.priority,
            metadata={
                "job_type": self.job_type,
                "owner": self.owner,
                "organization": self.organization,
            },
            result=self.result,
            queue=self.queue,
        )


class JobFailure(JobRecord):
    """Failed jobs (each one also dead-lettered in Redis), shown on their own in the admin."""

    class Meta:
        proxy = True
        verbose_name = "failed job"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one endpoint."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=64)
    job_id = models.CharField(max_length=255, db_index=True)
    #: The ``webhook-id`` the receiver saw: the same on every retry and redelivery.
    delivery_id = models.CharField(max_length=255, blank=True, db_index=True)
    attempt = models.PositiveIntegerField(default=1)
    #: None when no response came back (timeout, refused connection, open circuit).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    #: The first KiB of the response body.
    response_excerpt = models.TextField(blank=True)
    delivered_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-delivered_at",)
        verbose_name_plural = "webhook deliveries"
        indexes = (models.Index(fields=("-delivered_at", "-id"), name="delivery_newest"),)

    def __str__(self) -> str:
        return f"{self.event} {self.job_id} -> {self.endpoint_id} ({self.status_code})"

    @property
    def succeeded(self) -> bool:
        """Tell whether the endpoint answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


class RouteDelivery(models.Model):
    """One attempt of the routing worker to send a debate result to a channel."""

    job_id = models.CharField(max_length=255, db_index=True)
    debate_id = models.CharField(max_length=255, db_index=True)
    platform = models.CharField(max_length=16)
    #: Shown without secrets: a webhook URL's host, a chat id, an endpoint id, an address.
    target = models.CharField(max_length=320)
    attempt = models.PositiveIntegerField(default=1)
    #: delivered, retry, failed or circuit_open.
    outcome = models.CharField(max_length=16, db_index=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    owner = models.CharField(max_length=64, blank=True)
    organization = models.CharField(max_length=100, blank=True, db_index=True)
    delivered_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-delivered_at",)
        verbose_name_plural = "route deliveries"

    def __str__(self) -> str:
        return f"{self.platform} {self.debate_id} ({self.outcome})"


class HealingRecord(models.Model):
    """One consensus healing: which debate, why, what was done, and the debate that replaced it."""

    class Action(models.TextChoices):
        RE_DEBATE = "re_debate"
        EXTEND_ROUNDS = "extend_rounds"
        ADD_MEDIATOR = "add_mediator"
        NOTIFY_USER = "notify_user"
        ARCHIVE = "archive"
        ESCALATE = "escalate"

    class Reason(models.TextChoices):
        NO_CONSENSUS = "no_consensus"
        STALLED = "stalled"
        DIVERGING = "diverging"
        TIMEOUT = "timeout"
        ERROR = "error"
        LOW_QUALITY = "low_quality"

    #: The ``consensus_heal`` job that did it (one row per job: healing is recorded once).
    heal_job_id = models.CharField(max_length=255, unique=True)
    debate_id = models.CharField(max_length=255, db_index=True)
    #: The first debate of the healing chain; attempts are counted per chain.
    root_debate_id = models.CharField(max_length=255, db_index=True)
    attempt = models.PositiveIntegerField()
    reason = models.CharField(max_length=32, choices=Reason.choices)
    action = models.CharField(max_length=32, choices=Action.choices)
    success = models.BooleanField()
    message = models.TextField(blank=True)
    #: The debate enqueued in place of the healed one ("" when the action enqueued none).
    new_debate_id = models.CharField(max_length=255, blank=True, db_index=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.action} {self.debate_id} (attempt {self.attempt})"
