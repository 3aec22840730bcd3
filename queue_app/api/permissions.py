"""Authentication and permissions of the queue API: who the caller is and what it may touch.

Authentication is DRF's token or session (settings ``REST_FRAMEWORK``); anonymous callers get
401 because token authentication comes first and names its scheme in ``WWW-Authenticate``.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from queue_app.models import OrganizationMembership, WebhookEndpoint
from queue_app.services.scope import Scope


def scope_of(request: Request) -> Scope:
    """Return the caller's scope (computed once per request)."""
    scope = getattr(request, "_queue_scope", None)
    if scope is None:
        scope = Scope.of(request.user)
        request._queue_scope = scope  # type: ignore[attr-defined]
    return scope


class ScopedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication that reads the caller's organization in the same query.

    The query is plain SQL: the ORM spends several times longer building a query with two
    joins than the database spends answering it, on every API request.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        """Return the token's active user and the token (one query, membership included)."""
        token_model = self.get_model()
        users = token_model._meta.get_field("user").related_model._default_manager
        user = next(iter(users.raw(_token_user_sql(token_model, users.db), [key])), None)
        if user is None:
            raise AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        membership = None
        if user.membership_id is not None:
            membership = OrganizationMembership.from_db(
                users.db,
                ["id", "user_id", "organization"],
                [user.membership_id, user.pk, user.membership_organization],
            )
        # As select_related would: user.queue_membership answers without another query.
        OrganizationMembership.user.field.remote_field.set_cached_value(user, membership)
        token = token_model.from_db(users.db, ["key", "user_id"], [key, user.pk])
        return user, token


@functools.cache
def _token_user_sql(token_model: Any, database: str) -> str:
    """Return the SQL of the user of a token (``%s``) with its membership's id and organization."""
    quote = connections[database].ops.quote_name
    user_model = token_model._meta.get_field("user").related_model
    user_pk = quote(user_model._meta.pk.column)
    member = OrganizationMembership._meta
    member_user = quote(member.get_field("user").column)
    return (
        f"SELECT u.*, m.{quote(member.pk.column)} AS membership_id,"
        f" m.{quote(member.get_field('organization').column)} AS membership_organization"
        f" FROM {quote(user_model._meta.db_table)} u"
        f" INNER JOIN {quote(token_model._meta.db_table)} t"
        f" ON t.{quote(token_model._meta.get_field('user').column)} = u.{user_pk}"
        f" LEFT OUTER JOIN {quote(member.db_table)} m ON m.{member_user} = u.{user_pk}"
        f" WHERE t.{quote(token_model._meta.pk.column)} = %s"
    )


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
