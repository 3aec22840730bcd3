"""Deploy settings: secret key, ARAGORA_SECURE_*, check --deploy, /metrics access, throttling."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from django.core.cache import cache
from django.test import Client

from tests.api_support import JOBS, debate, make_user, token_client
from tests.obs_support import ROOT

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

#: The production environment the README documents (section "Deployment").
PRODUCTION_ENV = {
    "ARAGORA_ALLOWED_HOSTS": "queue.example.com",
    "ARAGORA_SECURE_COOKIES": "true",
    "ARAGORA_SECURE_HSTS_SECONDS": "31536000",
    "ARAGORA_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "ARAGORA_SECURE_HSTS_PRELOAD": "true",
    "ARAGORA_SECURE_SSL_REDIRECT": "true",
    "ARAGORA_SECURE_PROXY_SSL_HEADER": "true",
    "ARAGORA_METRICS_TOKEN": "scrape-token-0123456789",
    "ARAGORA_WEBHOOK_SECRET_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}
PRINT_SETTINGS = (
    "from django.conf import settings as s; import json; print(json.dumps([s.SESSION_COOKIE_SECURE,"
    " s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
    " s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER]))"
)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py with only ``env`` (and PATH) as its ARAGORA_* environment."""
    base = {"PATH": "/usr/bin:/bin", "ARAGORA_RUN_DIR": str(ROOT / ".run")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_deploy_refuses_to_start_without_a_secret_key() -> None:
    done = _manage("check")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: ARAGORA_SECRET_KEY is not set: set it to a long random string (make run keeps"
        " one in .run/secret-key), or set ARAGORA_DEBUG=true for development"
    ]


def test_deploy_debug_key_is_flagged_by_check_deploy() -> None:
    done = _manage("check", "--deploy", ARAGORA_DEBUG="true")
    assert done.returncode == 0, done.stderr
    assert "security.W009" in done.stderr and "security.W018" in done.stderr


def test_deploy_check_deploy_is_clean_with_the_production_environment() -> None:
    env = {**PRODUCTION_ENV, "ARAGORA_SECRET_KEY": secrets.token_urlsafe(50)}
    done = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_deploy_check_deploy_flags_what_production_must_set() -> None:
    done = _manage("check", "--deploy", ARAGORA_SECRET_KEY=secrets.token_urlsafe(50))
    for check_id in ("W004", "W008", "W012", "W016", "aragora.W003"):
        assert check_id in done.stderr, check_id


def test_deploy_secure_variables_reach_django_settings() -> None:
    env = {**PRODUCTION_ENV, "ARAGORA_SECRET_KEY": secrets.token_urlsafe(50)}
    done = _manage("shell", "--no-imports", "-c", PRINT_SETTINGS, **env)
    assert json.loads(done.stdout.splitlines()[-1]) == [
        True,
        True,
        31536000,
        True,
        True,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
    ]
    default = _manage("shell", "--no-imports", "-c", PRINT_SETTINGS, ARAGORA_DEBUG="true")
    unset = [False, False, 0, False, False, False, None]
    assert json.loads(default.stdout.splitlines()[-1]) == unset


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"ARAGORA_METRICS_ALLOW": "10.0.0.0/8,nowhere"}, "ARAGORA_METRICS_ALLOW: 'nowhere'"),
        ({"ARAGORA_API_ENQUEUE_RATE": "fast"}, "aragora.E009"),
    ],
)
def test_deploy_bad_values_are_named(value: dict[str, str], message: str) -> None:
    done = _manage("check", ARAGORA_DEBUG="true", **value)
    assert done.returncode != 0 and message in done.stderr


def test_deploy_ssl_redirect_spares_probes(client: Client, settings: SettingsWrapper) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/admin/login/").status_code == 301
    assert client.get("/healthz").status_code == 200


def test_deploy_metrics_public_by_default(client: Client) -> None:
    assert client.get("/metrics").status_code == 200


def test_deploy_metrics_token_is_required_when_set(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_METRICS_TOKEN = "s3cret-scrape-token"
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert allowed.status_code == 200 and b"django_http_requests" in allowed.content


def test_deploy_metrics_allow_list_of_networks(client: Client, settings: SettingsWrapper) -> None:
    settings.ARAGORA_METRICS_ALLOW = ["10.1.0.0/16", "::1/128"]
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    settings.ARAGORA_METRICS_TOKEN = "t0ken"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").status_code == 200
    assert client.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_deploy_enqueue_is_throttled_per_user(redis_url: str, settings: SettingsWrapper) -> None:
    settings.ARAGORA_API_ENQUEUE_RATE = "3/minute"
    cache.clear()
    api = token_client(make_user("alice"))
    assert [api.post(JOBS, debate(), format="json").status_code for _ in range(3)] == [201] * 3
    throttled = api.post(JOBS, debate(), format="json")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert "throttled" in throttled.json()["detail"]
    assert api.get(JOBS).status_code == 200  # listings are not limited
    other = token_client(make_user("bob"))
    assert other.post(JOBS, debate(), format="json").status_code == 201
