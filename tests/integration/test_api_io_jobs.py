"""The REST API for the I/O kinds: debate origins, transcription and routing jobs."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from queue_app.models import WebhookEndpoint
from queue_app.queue import Job
from queue_app.services.bridge import get_bridge
from tests.api_support import JOBS, debate, make_user, token_client

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.com/services/T1/B1/secret"


@pytest.fixture
def api(redis_url: str) -> APIClient:
    """Return a token client of alice (organization acme), with an empty private Redis."""
    return token_client(make_user("alice", "acme"))


def stored(job_id: str) -> Job:
    clients = get_bridge()
    job = clients.call(clients.tracker.get_job(job_id))
    assert job is not None
    return job


def test_debate_origin_is_stored_in_metadata_never_shown(api: APIClient) -> None:
    body = debate()
    body["payload"]["origin"] = {"platform": "slack", "target": SLACK}
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 201, response.json()
    assert SLACK not in response.content.decode()
    assert stored(response.json()["id"]).metadata["origin"] == {
        "platform": "slack",
        "target": SLACK,
    }
    assert SLACK not in api.get(f"{JOBS}{response.json()['id']}/").content.decode()


@pytest.mark.parametrize(
    ("origin", "field", "message"),
    [
        ({"platform": "fax", "target": "1"}, "platform", "is not a valid choice"),
        ({"platform": "slack", "target": "not a url"}, "target", "webhook URL"),
        ({"platform": "slack", "target": "http://127.0.0.1/x"}, "target", "not a public"),
        ({"platform": "telegram", "target": "me"}, "target", "Telegram chat id"),
        ({"platform": "email", "target": "nobody"}, "target", "email address"),
        ({"platform": "slack"}, "target", "required"),
    ],
)
def test_bad_origins_are_400_naming_the_field(
    api: APIClient, origin: dict[str, Any], field: str, message: str
) -> None:
    body = debate()
    body["payload"]["origin"] = origin
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 400
    assert message in response.json()["payload"]["origin"][field][0]


def test_webhook_origin_must_be_an_endpoint_of_the_callers_scope(api: APIClient) -> None:
    mine = WebhookEndpoint.objects.create(
        url="https://example.com/a", secret="s" * 32, organization="acme"
    )
    theirs = WebhookEndpoint.objects.create(
        url="https://example.com/b", secret="s" * 32, organization="other"
    )
    for endpoint, expected in ((mine, 201), (theirs, 422)):  # well-formed, names no endpoint
        body = debate()
        body["payload"]["origin"] = {"platform": "webhook", "target": str(endpoint.pk)}
        response = api.post(JOBS, body, format="json")
        assert response.status_code == expected
    target = response.json()["payload"]["origin"]["target"]
    assert target == ["No such webhook endpoint."]


def test_transcription_jobs_go_to_their_queue(api: APIClient) -> None:
    body = {"job_type": "transcription_youtube", "payload": {"url": "https://example.com/v"}}
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 201, response.json()
    job = response.json()
    assert (job["queue"], job["job_type"]) == ("transcriptions", "transcription_youtube")
    assert stored(job["id"]).metadata["organization"] == "acme"


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "non_field_errors", "exactly one of file_path, file_data and url"),
        ({"url": "ftp://x"}, "url", "Enter a valid URL"),
        ({"file_path": "a.wav", "backend": "cloud"}, "backend", "is not a valid choice"),
        ({"file_path": "a.wav", "language": "English"}, "language", "ISO 639"),
        ({"file_path": "a.wav", "speed": 2}, "speed", "Unknown field"),
    ],
)
def test_bad_transcription_payloads_are_400_naming_the_field(
    api: APIClient, payload: dict[str, Any], field: str, message: str
) -> None:
    response = api.post(JOBS, {"job_type": "transcription", "payload": payload}, format="json")
    assert response.status_code == 400
    assert message in response.json()["payload"][field][0]


def test_routing_jobs_need_a_debate_of_the_caller(api: APIClient, redis_url: str) -> None:
    own = api.post(JOBS, debate(), format="json").json()["id"]
    other = token_client(make_user("bob", "other"))
    foreign = other.post(JOBS, debate(), format="json").json()["id"]
    body = {
        "job_type": "routing_email",
        "payload": {"debate_id": own, "recipient_email": "boss@example.com"},
    }
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["queue"] == "routing" and stored(response.json()["id"]).max_attempts == 3
    body["payload"]["debate_id"] = foreign
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 422  # well-formed, names no debate of the caller
    assert response.json()["payload"]["debate_id"] == ["No such debate job."]
