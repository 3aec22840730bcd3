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

    The query is plain SQL on a plain cursor: the ORM spends several times longer building a
    query with two joins, and mapping its row, than the database spends answering it, on every
    API request.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        """Return the token's active user and the token (one query, membership included)."""
        token_model = self.get_model()
        users = token_model._meta.get_field("user").related_model._default_manager
        query = _token_user_query(token_model, users.db)
        user, membership = query.run(key)
        if user is None:
            raise AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        # As select_related would: user.queue_membership answers without another query.
        OrganizationMembership.user.field.remote_field.set_cached_value(user, membership)
        token = token_model.from_db(query.database, ["key", "user_id"], [key, user.pk])
        return user, token


class TokenUserQuery:
    """The SQL of a token's user (all its columns) with its membership, and its row mapping."""

    def __init__(self, token_model: Any, database: str) -> None:
        self.database = database
        self.user_model = token_model._meta.get_field("user").related_model
        connection = connections[database]
        self.fields = self.user_model._meta.concrete_fields
        #: Position, converters and column of each user column whose value needs converting
        #: (as the ORM converts them: booleans and dates on SQLite, ``from_db_value``). They
        #: depend on the backend and the settings only, so one list serves every thread.
        self.converters = []
        for position, field in enumerate(self.fields):
            column = field.get_col("u")
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                self.converters.append((position, found, column))
        self.sql = _token_user_sql(token_model, self.user_model, self.fields, connection)

    def run(self, key: str) -> tuple[Any, OrganizationMembership | None]:
        """Return the user of token ``key`` (None when unknown) and its membership."""
        connection = connections[self.database]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [key])
            row = cursor.fetchone()
        if row is None:
            return None, None
        values = list(row[: len(self.fields)])
        for position, converters, column in self.converters:
            for convert in converters:
                values[position] = convert(values[position], column, connection)
        user = self.user_model.from_db(
            self.database, [field.attname for field in self.fields], values
        )
        membership_id, organization = row[len(self.fields) :]
        if membership_id is None:
            return user, None
        fields = ["id", "user_id", "organization"]
        return user, OrganizationMembership.from_db(
            self.database, fields, [membership_id, user.pk, organization]
        )


@functools.cache
def _token_user_query(token_model: Any, database: str) -> TokenUserQuery:
    return TokenUserQuery(token_model, database)


def _token_user_sql(token_model: Any, user_model: Any, fields: Any, connection: Any) -> str:
    """Return the SQL of the user of a token (``%s``): its columns, then its membership's id
    and organization."""
    quote = connection.ops.quote_name
    user_pk = quote(user_model._meta.pk.column)
    member = OrganizationMembership._meta
    member_user = quote(member.get_field("user").column)
    columns = ", ".join(f"u.{quote(field.column)}" for field in fields)
    return (
        f"SELECT {columns}, m.{quote(member.pk.column)},"
        f" m.{quote(member.get_field('organization').column)}"
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
