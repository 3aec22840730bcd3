"""Users and API clients for the Django layer's tests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from queue_app.models import OrganizationMembership

JOBS = "/api/queue/jobs/"


def make_user(
    username: str, organization: str = "", *, staff: bool = False, password: str | None = None
) -> User:
    """Create a user, member of ``organization`` when given, staff when asked.

    Without a password none is hashed (slow on purpose), and only tokens or force_login work.
    """
    user = User.objects.create_user(username, password=password, is_staff=staff)
    if organization:
        OrganizationMembership.objects.create(user=user, organization=organization)
    return user


def token_client(user: User) -> APIClient:
    """Return an API client that authenticates as ``user`` with a DRF token."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def debate(question: str = "Is Redis a database?", **body: Any) -> dict[str, Any]:
    """Return a valid ``POST jobs/`` body for a debate, with ``body`` merged in."""
    payload = {"question": question, "agents": ["anthropic-api", "openai-api"], "rounds": 3}
    return {"job_type": "debate", "payload": payload, **body}
