"""The queue API with Redis down: every endpoint answers 503 JSON with Retry-After, never 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from rest_framework.test import APIClient

from tests.api_support import JOBS, debate, make_user, token_client

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

    from tests.conftest import RedisServer

pytestmark = pytest.mark.django_db

#: Every queue endpoint that reads or writes Redis: (method, path, body).
REDIS_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("get", JOBS, None),
    ("post", JOBS, debate()),
    ("get", f"{JOBS}{{job}}/", None),
    ("post", f"{JOBS}{{job}}/cancel/", None),
    ("post", f"{JOBS}{{job}}/retry/", None),
    ("get", "/api/queue/stats/", None),
    ("get", "/api/queue/workers/", None),
]


def _walk(api: APIClient, job_id: str) -> dict[str, tuple[int, str, Any]]:
    seen = {}
    for method, path, body in REDIS_ENDPOINTS:
        url = path.format(job=job_id)
        response = getattr(api, method)(url, body, format="json")
        seen[f"{method.upper()} {path}"] = (
            response.status_code,
            response.get("Retry-After", ""),
            response.json() if response["Content-Type"] == "application/json" else response.content,
        )
    return seen


@pytest.mark.parametrize("user", ["staff", "member"])
def test_api_outage_every_endpoint_answers_503_json_after_redis_dies(
    user: str,
    settings: SettingsWrapper,
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    settings.REDIS_URL = server.url
    api = token_client(make_user(user, "acme", staff=user == "staff"))
    job_id = api.post(JOBS, debate(), format="json").json()["id"]
    server.kill()
    for endpoint, (status, retry_after, body) in _walk(api, job_id).items():
        assert (status, retry_after) == (503, "5"), (endpoint, status, body)
        assert "Redis" in body["detail"], endpoint


def test_api_outage_every_endpoint_answers_503_when_redis_never_answered(
    settings: SettingsWrapper, redis_server_factory: Callable[..., RedisServer]
) -> None:
    server = redis_server_factory()
    server.kill()  # a port where nothing listens any more
    settings.REDIS_URL = server.url
    api = token_client(make_user("alice", "acme"))
    for endpoint, (status, retry_after, body) in _walk(api, "some-id").items():
        assert (status, retry_after) == (503, "5"), (endpoint, status, body)
        assert "Redis" in body["detail"], endpoint
