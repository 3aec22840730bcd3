"""Token authentication of the API: one query gives the user, its organization and the token."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from queue_app.api.permissions import ScopedTokenAuthentication
from queue_app.services.scope import Scope
from tests.api_support import JOBS, make_user, token_client

pytestmark = pytest.mark.django_db


def authenticate(key: str) -> tuple[object, Token]:
    return ScopedTokenAuthentication().authenticate_credentials(key)


@pytest.mark.parametrize(("organization", "staff"), [("acme", False), ("", False), ("", True)])
def test_token_gives_user_organization_and_token_in_one_query(
    organization: str, staff: bool
) -> None:
    user = make_user("alice", organization, staff=staff)
    token = Token.objects.create(user=user)
    with CaptureQueriesContext(connection) as queries:
        found, auth = authenticate(token.key)
        scope = Scope.of(found)
    assert len(queries) == 1
    assert scope == Scope(user_id=str(user.pk), organization=organization, is_staff=staff)
    assert (found.username, auth.key, auth.user_id) == ("alice", token.key, user.pk)
    assert auth.created == token.created  # read when asked


def test_token_user_has_every_column_as_the_orm_reads_it() -> None:
    user = make_user("carol", "acme", staff=True)
    user.last_login = timezone.now()
    user.first_name, user.email = "Carol", "carol@example.com"
    user.save()
    found, _ = authenticate(Token.objects.create(user=user).key)
    expected = User.objects.get(pk=user.pk)
    for field in User._meta.concrete_fields:
        value = getattr(found, field.attname)
        assert value == getattr(expected, field.attname), field.name
        assert type(value) is type(getattr(expected, field.attname)), field.name
    assert found.is_staff is True and found.is_active is True
    assert found._state.db == "default" and not found._state.adding


def test_unknown_token_and_inactive_user_get_401(redis_url: str) -> None:
    user = make_user("bob", "acme")
    client = token_client(user)
    assert client.get(JOBS).status_code == 200
    user.is_active = False
    user.save()
    refused = client.get(JOBS)
    assert refused.status_code == 401 and "inactive" in refused.json()["detail"]
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    unknown = stranger.get(JOBS)
    assert unknown.status_code == 401 and unknown.json()["detail"] == "Invalid token."
