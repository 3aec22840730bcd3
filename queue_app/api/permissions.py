"""Authentication and permissions of the queue API: who the caller is and what it may touch.

Authentication is DRF's token or session (settings ``REST_FRAMEWORK``); anonymous callers get
401 because token authentication comes first and names its scheme in ``WWW-Authenticate``.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from queue_app.models import WebhookEndpoint
from queue_app.services.scope import Scope


def scope_of(request: Request) -> Scope:
    """Return the caller's scope (computed once per request)."""
    scope = getattr(request, "_queue_scope", None)
    if scope is None:
        scope = Scope.of(request.user)
        request._queue_scope = scope  # type: ignore[attr-defined]
    return scope


class ScopedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication that reads the caller's organization in the same query."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        """Return the token's active user and the token (one query, membership included)."""
        tokens = self.get_model().objects.select_related("user", "user__queue_membership")
        token = tokens.filter(key=key).first()
        if token is None:
            raise AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token


class InScope(IsAuthenticated):
    """Authenticated callers, on objects of their own or of their organization (staff: all)."""

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        """Allow an endpoint only inside the caller's scope."""
        if isinstance(obj, WebhookEndpoint):
            return scope_of(request).allows(str(obj.owner_id or ""), obj.organization)
        return True


def scoped_endpoints(request: Request) -> Any:
    """Return the webhook endpoints the caller may see."""
    scope = scope_of(request)
    endpoints = WebhookEndpoint.objects.select_related("circuit", "owner")
    if scope.is_staff:
        return endpoints
    mine = endpoints.filter(owner_id=scope.user_id)
    if scope.organization:
        mine = mine | endpoints.filter(organization=scope.organization)
    return mine
