"""Admin of webhook endpoints (write-only secret, circuit state and reset) and their deliveries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from queue_app.models import (
    EVENT_TYPES,
    MIN_SECRET_LENGTH,
    CircuitBreakerState,
    WebhookDelivery,
    WebhookEndpoint,
)


class WebhookEndpointForm(forms.ModelForm):
    """Endpoint form whose secret field is write-only: never rendered, blank keeps the old one."""

    new_secret = forms.CharField(
        label="Signing secret",
        required=False,
        min_length=MIN_SECRET_LENGTH,
        max_length=255,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: it is never shown again. Leave blank to keep the current secret.",
    )
    event_types = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "event_types", "is_active", "owner", "organization")

    def clean_new_secret(self) -> str:
        """Require a secret for a new endpoint."""
        secret: str = self.cleaned_data.get("new_secret") or ""
        if not secret and self.instance._state.adding:
            raise forms.ValidationError("A new endpoint needs a signing secret.")
        return secret

    def save(self, commit: bool = True) -> WebhookEndpoint:
        """Store the new secret, if one was given."""
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
        "organization",
        "is_active",
        "circuit_state",
        "consecutive_failures",
        "success_count",
        "failure_count",
        "last_success_at",
        "last_failure_at",
    )
    list_filter = ("is_active", "circuit__state", "organization")
    search_fields = ("url", "organization")
    list_select_related = ("circuit",)
    readonly_fields = (
        "consecutive_failures",
        "success_count",
        "failure_count",
        "last_success_at",
        "last_failure_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("url", "new_secret", "event_types", "is_active")}),
        ("Ownership", {"fields": ("owner", "organization")}),
        ("Health", {"fields": readonly_fields}),
    )
    actions = ("reset_circuits",)

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


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log, read-only."""

    list_display = (
        "delivered_at",
        "endpoint",
        "event",
        "job_id",
        "attempt",
        "status_code",
        "duration_seconds",
        "short_error",
    )
    list_filter = ("event", "status_code", "endpoint")
    search_fields = ("=job_id",)
    date_hierarchy = "delivered_at"
    list_select_related = ("endpoint",)

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
