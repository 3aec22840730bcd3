"""Admin of webhook endpoints (write-only secret, circuit, test event), deliveries (redeliver)
and the signing secrets of callbacks (write-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from queue_app.admin.paging import CappedCountPaginator
from queue_app.models import (
    EVENT_TYPES,
    MIN_SECRET_LENGTH,
    CircuitBreakerState,
    SigningSecret,
    WebhookDelivery,
    WebhookEndpoint,
)
from queue_app.queue import QueueError
from queue_app.services import webhook_events
from workers.webhooks import check_secret


def secret_field() -> forms.CharField:
    """Return a write-only secret field: never rendered, blank keeps the current secret."""
    return forms.CharField(
        label="Signing secret",
        required=False,
        min_length=MIN_SECRET_LENGTH,
        max_length=255,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Write-only: it is never shown again; blank keeps the current one. Standard "
            "Webhooks format: whsec_ followed by base64 of 24 to 64 random bytes."
        ),
    )


def clean_secret(form: forms.ModelForm) -> str:
    """Return the form's new secret, checked; required when the object is new."""
    secret: str = form.cleaned_data.get("new_secret") or ""
    if not secret and form.instance._state.adding:
        raise forms.ValidationError("A signing secret is required.")
    if secret:
        try:
            check_secret(secret)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
    return secret


class WebhookEndpointForm(forms.ModelForm):
    """Endpoint form whose secret field is write-only."""

    new_secret = secret_field()
    event_types = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "event_types", "is_active", "owner", "organization")

    def clean_new_secret(self) -> str:
        """Check the secret; require one for a new endpoint."""
        return clean_secret(self)

    def save(self, commit: bool = True) -> WebhookEndpoint:
        """Store the new secret, encrypted, if one was given."""
        if self.cleaned_data.get("new_secret"):
            self.instance.secret = self.cleaned_data["new_secret"]
        return super().save(commit)


class SigningSecretForm(forms.ModelForm):
    """Callback signing secret form, write-only like the endpoints'."""

    new_secret = secret_field()

    class Meta:
        model = SigningSecret
        fields = ("organization",)

    def clean_new_secret(self) -> str:
        """Check the secret; require one for a new row."""
        return clean_secret(self)

    def save(self, commit: bool = True) -> SigningSecret:
        """Store the new secret, encrypted, if one was given."""
        if self.cleaned_data.get("new_secret"):
            self.instance.secret = self.cleaned_data["new_secret"]
        return super().save(commit)


class CircuitInline(admin.StackedInline):
    """The endpoint's circuit breaker, read-only (reset it with the action)."""

    model = CircuitBreakerState
    can_delete = False
    max_num = 1
    readonly_fields = ("state", "failure_count", "opened_at", "next_attempt_at", "updated_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: every endpoint gets its circuit when it is created."""
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Webhook endpoints with their health and circuit state; the secret is write-only."""

    form = WebhookEndpointForm
    inlines = (CircuitInline,)
    list_display = (
        "url",
        "kind",
        "organization",
        "is_active",
        "circuit_state",
        "consecutive_failures",
        "success_count",
        "failure_count",
        "last_success_at",
        "last_failure_at",
    )
    list_filter = ("is_active", "kind", "circuit__state", "organization")
    search_fields = ("url", "organization")
    list_select_related = ("circuit",)
    health_fields = (
        "consecutive_failures",
        "success_count",
        "failure_count",
        "last_success_at",
        "last_failure_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("kind", "deactivated_reason", *health_fields)
    fieldsets = (
        (None, {"fields": ("url", "new_secret", "event_types", "is_active")}),
        ("Ownership", {"fields": ("kind", "owner", "organization")}),
        ("Health", {"fields": ("deactivated_reason", *health_fields)}),
    )
    actions = ("reset_circuits", "send_test_events")

    @admin.display(description="circuit", ordering="circuit__state")
    def circuit_state(self, endpoint: WebhookEndpoint) -> str:
        """Return the circuit breaker state."""
        circuit = getattr(endpoint, "circuit", None)
        return circuit.get_state_display() if circuit else "-"

    @admin.action(description="Reset circuit (close it, forget failures)", permissions=["change"])
    def reset_circuits(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        """Close the circuit of each selected endpoint."""
        for endpoint in queryset:
            endpoint.reset_circuit()
            self.log_change(request, endpoint, "Reset circuit.")
        self.message_user(request, f"Reset {queryset.count()} circuit(s).", messages.SUCCESS)

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_events(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        """Enqueue a ``webhook.test`` event to each selected endpoint."""
        try:
            jobs = [webhook_events.send_test_event(endpoint) for endpoint in queryset]
        except QueueError as error:
            self.message_user(request, f"Not sent: {error}", messages.ERROR)
            return
        self.message_user(request, f"Enqueued {len(jobs)} test event(s).", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log, read-only."""

    list_display = (
        "delivered_at",
        "endpoint",
        "event",
        "job_id",
        "delivery_id",
        "attempt",
        "status_code",
        "duration_seconds",
        "short_error",
    )
    list_filter = ("event", "status_code", "endpoint")
    search_fields = ("=job_id", "=delivery_id")
    actions = ("redeliver",)
    date_hierarchy = "delivered_at"
    list_select_related = ("endpoint",)
    # Newest first on an index of its own (delivery_newest); counts capped, never the table.
    ordering = ("-delivered_at", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Refuse: deliveries are written by the delivery worker."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: the log is read-only."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: old deliveries go with the ledger retention."""
        return False

    @admin.display(description="error")
    def short_error(self, delivery: WebhookDelivery) -> str:
        """Return the first 120 characters of the error."""
        return delivery.error[:120]

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        """Allow redelivery to those who may change webhook endpoints."""
        return request.user.has_perm("queue_app.change_webhookendpoint")

    @admin.action(description="Redeliver (same webhook-id and body)", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        """Enqueue the event of each selected delivery again."""
        sent, failed = 0, []
        for delivery in queryset.select_related("endpoint"):
            try:
                webhook_events.redeliver(delivery)
                sent += 1
            except QueueError as error:
                failed.append(f"{delivery.pk}: {error}")
        if sent:
            self.message_user(request, f"Enqueued {sent} redelivery(ies).", messages.SUCCESS)
        for line in failed:
            self.message_user(request, f"Not redelivered: {line}", messages.ERROR)


@admin.register(SigningSecret)
class SigningSecretAdmin(admin.ModelAdmin):
    """Secrets signing the callbacks (debate ``webhook_url``) of organizations; write-only."""

    form = SigningSecretForm
    list_display = ("__str__", "created_at", "updated_at")
    search_fields = ("organization",)
    fields = ("organization", "new_secret")
