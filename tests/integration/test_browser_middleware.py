"""Browser middleware (aragora_site/middleware.py): skipped for token API requests only.

Token requests to the queue API answer as before, without cookies; session-authenticated API
writes still need their CSRF token; the browsable API and the admin keep every middleware.
"""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from aragora_site.middleware import is_token_api_request
from tests.api_support import JOBS, debate, make_user, token_client

pytestmark = pytest.mark.django_db

#: Headers of a 201 answer to ``POST jobs/`` (values aside).
CREATED_HEADERS = {
    "Content-Type",
    "Location",
    "Vary",
    "Allow",
    "X-Frame-Options",
    "Content-Length",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
}


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        (JOBS, {"HTTP_AUTHORIZATION": "Token abc"}, True),
        (JOBS, {"HTTP_AUTHORIZATION": "token abc", "HTTP_ACCEPT": "application/json"}, True),
        (JOBS, {"HTTP_AUTHORIZATION": "Token abc", "HTTP_ACCEPT": "text/html"}, False),
        (f"{JOBS}?format=api", {"HTTP_AUTHORIZATION": "Token abc"}, False),
        (JOBS, {"HTTP_AUTHORIZATION": "Bearer abc"}, False),
        (JOBS, {}, False),
        ("/api/schema/", {"HTTP_AUTHORIZATION": "Token abc"}, False),
        ("/admin/", {"HTTP_AUTHORIZATION": "Token abc"}, False),
    ],
)
def test_token_api_requests_are_told_apart(path: str, headers: dict, expected: bool) -> None:
    assert is_token_api_request(RequestFactory().get(path, **headers)) is expected


def test_token_api_answers_keep_their_headers_and_set_no_cookie(redis_url: str) -> None:
    api = token_client(make_user("alice", "acme"))
    created = api.post(JOBS, debate(), format="json")
    assert created.status_code == 201
    assert set(created.headers) == CREATED_HEADERS
    assert created.headers["Vary"] == "Accept" and created.headers["X-Frame-Options"] == "DENY"
    assert not created.cookies
    refused = APIClient(HTTP_AUTHORIZATION="Token " + "0" * 40).post(JOBS, debate(), format="json")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Token"
    assert not refused.cookies


def test_session_api_writes_still_need_the_csrf_token(redis_url: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("erin", "acme"))
    refused = client.post(JOBS, debate(), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    page = client.get(JOBS, HTTP_ACCEPT="text/html")  # the browsable API sets the CSRF cookie
    token = page.cookies["csrftoken"].value
    accepted = client.post(JOBS, debate(), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_token_request_for_html_gets_the_browsable_api_with_its_csrf_cookie(
    redis_url: str,
) -> None:
    api = token_client(make_user("alice", "acme"))
    page = api.get(JOBS, HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "csrftoken" in page.cookies


def test_admin_keeps_sessions_and_csrf(client: Client) -> None:
    make_user("root", staff=True, password="pw-root-long-enough")
    login = client.get("/admin/login/")
    assert "csrftoken" in login.cookies
    strict = Client(enforce_csrf_checks=True)
    refused = strict.post("/admin/login/", {"username": "root", "password": "pw-root-long-enough"})
    assert refused.status_code == 403
    assert client.login(username="root", password="pw-root-long-enough")
    assert client.get("/admin/").status_code == 200
