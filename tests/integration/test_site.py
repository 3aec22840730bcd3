"""Smoke tests of the site's fixed URLs through Django's test client."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

from tests.api_support import JOBS, make_user, token_client


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


def test_site_root_is_a_landing_page_linking_the_entry_points(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    text = response.content.decode()
    for url in ("/admin/", "/admin/queue/dashboard/", "/api/docs/", "/api/redoc/", "/metrics"):
        assert f'href="{url}"' in text


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_site_api_docs_load_their_assets_from_this_site(client: Client, url: str) -> None:
    page = client.get(url).content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(asset.startswith("/static/drf_spectacular_sidecar/") for asset in assets)
    assert "cdn" not in page.lower() and "@latest" not in page
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset


@pytest.mark.django_db
def test_site_api_docs_default_request_body_enqueues_a_job(redis_url: str) -> None:
    client = token_client(make_user("docs-reader"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    body = schema["paths"][JOBS]["post"]["requestBody"]["content"]["application/json"]
    [example] = body["examples"].values()
    response = client.post(JOBS, example["value"], format="json")
    assert response.status_code == 201, response.content
    assert response.json()["payload"]["agents"] == ["demo-1", "demo-2", "demo-3"]
