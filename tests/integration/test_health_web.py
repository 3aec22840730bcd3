"""The web's ``/healthz`` (process up) and ``/readyz`` (Redis, database, migrations)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.obs_support import ROOT, base_env, start_web, wait_for, wait_ready

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper
    from pytest_django.live_server_helper import LiveServer

    from tests.conftest import RedisServer


@pytest.fixture
def web(django_db_setup: None, live_server: LiveServer) -> LiveServer:
    """Return the live server, started after the test database exists (it shares it)."""
    return live_server


@pytest.mark.django_db(transaction=True)
def test_health_web_ready_when_redis_and_database_answer(web: LiveServer) -> None:
    assert httpx.get(f"{web.url}/healthz").json() == {"status": "ok"}
    response = httpx.get(f"{web.url}/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"redis": "ok", "database": "ok", "migrations": "ok"},
    }
    assert "no-cache" in response.headers["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_health_web_not_ready_with_redis_down(
    web: LiveServer,
    settings: SettingsWrapper,
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    settings.REDIS_URL = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
    assert httpx.get(f"{web.url}/readyz").status_code == 200
    server.kill()
    response = httpx.get(f"{web.url}/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == "Redis unreachable: ConnectionError"
    assert body["checks"]["database"] == "ok"
    assert "s3cret" not in response.text
    assert httpx.get(f"{web.url}/healthz").status_code == 200


def test_health_web_not_ready_until_migrated(redis_url: str, tmp_path: Path) -> None:
    env = base_env(redis_url, tmp_path)
    web, url = start_web(env, tmp_path / "web.log", migrate=False)
    try:
        wait_ready(f"{url}/healthz", web)
        response = httpx.get(f"{url}/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"].endswith("unapplied")
        migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
        subprocess.run(migrate, cwd=ROOT, env=env, check=True)
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, "readiness after migrate")
    finally:
        web.stop()
