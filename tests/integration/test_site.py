"""Smoke tests of the site's fixed URLs through Django's test client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client


def test_site_admin_login_page_answers(client: Client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content


@pytest.mark.django_db
def test_site_admin_login_accepts_superuser(client: Client, admin_user: User) -> None:
    credentials = {"username": "admin", "password": "password", "next": "/admin/"}
    response = client.post("/admin/login/", credentials)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_site_healthz_answers_ok(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_site_metrics_export_request_counters(client: Client) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


def test_site_api_schema_is_openapi(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
