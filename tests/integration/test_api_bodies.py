"""Bodies of the queue API through Django: malformed, deeply nested, oversized, chunked."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from queue_app.api.bodies import json_depth
from tests.api_support import JOBS, debate, make_user, token_client

pytestmark = pytest.mark.django_db

WEBHOOKS = "/api/queue/webhooks/"


@pytest.fixture
def api(redis_url: str) -> APIClient:
    """Return a token client of alice, with an empty private Redis."""
    return token_client(make_user("alice", "acme"))


def _pending(api: APIClient) -> int:
    return api.get("/api/queue/stats/").json()["queues"]["debates"]["pending"]


@pytest.mark.parametrize("url", [JOBS, WEBHOOKS])
@pytest.mark.parametrize("depth", [33, 100_000])
def test_api_bodies_deeply_nested_json_is_400(api: APIClient, url: str, depth: int) -> None:
    body = "[" * depth + "]" * depth
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response.json() == {"detail": "JSON nested deeper than 32 levels."}


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("[]", 0),
        ([], 1),
        ({}, 1),
        ([[]], 2),
        ([1, [2, [3, [4]]]], 4),
        ({"a": {"b": [1, {"c": []}]}, "d": 2}, 5),
        ({"jobs": [{"payload": {"agents": ["x"]}}] * 3}, 5),
    ],
)
def test_json_depth_counts_nested_arrays_and_objects(value: object, depth: int) -> None:
    assert json_depth(value) == depth


def test_api_bodies_nesting_up_to_the_limit_reaches_validation(api: APIClient) -> None:
    payload: object = "leaf"
    for _ in range(30):
        payload = {"x": payload}
    response = api.post(JOBS, {"job_type": "debate", "payload": payload}, format="json")
    assert response.status_code == 400 and "x" in response.json()["payload"]


@pytest.mark.parametrize("url", [JOBS, WEBHOOKS])
@pytest.mark.parametrize("size", [300_000, 3_000_000, 30_000_000])
def test_api_bodies_oversized_is_413_json_whatever_the_size(
    api: APIClient, url: str, size: int
) -> None:
    body = json.dumps(debate(question="x" * size))
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body larger than 262144 bytes."}
    assert _pending(api) == 0


def test_api_bodies_chunked_without_length_is_411_under_wsgi(api: APIClient) -> None:
    response = api.generic(
        "POST",
        JOBS,
        json.dumps(debate()).encode(),
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    assert _pending(api) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [(b'{"job_type": ', "JSON parse error"), (b"\xff\xfe", "JSON parse error")],
)
def test_api_bodies_malformed_json_is_400(api: APIClient, body: bytes, message: str) -> None:
    response = api.post(JOBS, body, content_type="application/json")
    assert response.status_code == 400 and message in response.json()["detail"]


def test_api_bodies_other_media_types_are_415(api: APIClient) -> None:
    response = api.post(JOBS, "job_type=debate", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "Unsupported media type" in response.json()["detail"]
