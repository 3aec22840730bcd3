"""The OpenAPI schema tells the truth: error statuses, payloads by job type, strict input."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.api_support import JOBS, debate, make_user, token_client

pytestmark = pytest.mark.django_db

HOOKS = "/api/queue/webhooks/"
SECRET = "whsec-0123456789abcdef"
#: Error statuses each operation must document.
ERRORS = {
    ("get", "/api/queue/jobs/"): {400, 401, 503},
    ("post", "/api/queue/jobs/"): {400, 401, 403, 411, 413, 415, 422, 429, 503},
    ("post", "/api/queue/jobs/bulk/"): {400, 401, 403, 411, 413, 415, 422, 429, 503},
    ("get", "/api/queue/jobs/{job_id}/"): {401, 404, 503},
    ("post", "/api/queue/jobs/{job_id}/cancel/"): {401, 403, 404, 409, 411, 413, 503},
    ("post", "/api/queue/jobs/{job_id}/retry/"): {401, 403, 404, 409, 411, 413, 503},
    ("get", "/api/queue/stats/"): {401, 503},
    ("get", "/api/queue/workers/"): {401, 503},
    ("get", "/api/queue/webhooks/"): {400, 401},
    ("post", "/api/queue/webhooks/"): {400, 401, 403, 411, 413, 415},
    ("get", "/api/queue/webhooks/{id}/"): {401, 404},
    ("patch", "/api/queue/webhooks/{id}/"): {400, 401, 403, 404, 411, 413, 415},
    ("delete", "/api/queue/webhooks/{id}/"): {401, 403, 404},
    ("get", "/api/queue/webhooks/{id}/deliveries/"): {400, 401, 404},
    ("post", "/api/queue/webhooks/{id}/test/"): {401, 403, 404, 411, 413, 503},
    ("post", "/api/queue/webhooks/{id}/deliveries/{delivery_id}/redeliver/"): {
        *(401, 403, 404, 411, 413, 503)
    },
}


@pytest.fixture
def schema(client: Client) -> dict[str, Any]:
    """Return the served OpenAPI schema."""
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    return dict(response.json())


@pytest.fixture
def api(redis_url: str) -> APIClient:
    """Return a token client of alice (organization acme), with an empty private Redis."""
    return token_client(make_user("alice", "acme"))


def test_api_schema_documents_every_error_status(schema: dict[str, Any]) -> None:
    documented = {
        (method, path): {int(code) for code in operation["responses"] if code[0] in "45"}
        for path, operations in schema["paths"].items()
        if path.startswith("/api/queue/")
        for method, operation in operations.items()
    }
    assert documented == ERRORS


def test_api_schema_job_payload_is_one_of_by_job_type(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    create = components["JobCreateRequest"]
    shapes = ["Debate", "Transcription", "Youtube", "Routing", "RoutingEmail", "Batch", "Gauntlet"]
    refs = [f"#/components/schemas/{shape}JobCreateRequest" for shape in shapes]
    assert create["oneOf"] == [{"$ref": ref} for ref in refs]
    job_types = [components[ref.rsplit("/", 1)[1]]["properties"]["job_type"] for ref in refs]
    assert all("$ref" in job_type or "enum" in job_type for job_type in job_types)
    debate_job = components["DebateJobCreateRequest"]
    assert debate_job["additionalProperties"] is False
    assert set(debate_job["required"]) == {"job_type", "payload"}
    payload = components["DebatePayloadRequest"]
    assert payload["required"] == ["question"] and payload["additionalProperties"] is False
    consensus = payload["properties"]["consensus"]["$ref"].rsplit("/", 1)[1]
    assert components[consensus]["enum"] == ["majority", "unanimous", "judge"]
    post = schema["paths"]["/api/queue/jobs/"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"].values()
    assert any(example["value"]["job_type"] == "debate" for example in examples)


def test_api_schema_webhook_request_is_strict(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    # Without a secret, one is generated and returned once: only the URL is required.
    assert set(components["WebhookEndpointRequest"]["required"]) == {"url"}
    assert "pattern" in components["WebhookEndpointRequest"]["properties"]["secret"]
    assert "required" not in components["PatchedWebhookEndpointRequest"]
    assert components["WebhookEndpointRequest"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"secret": 12345678901234567890}, "secret"),
        ({"is_active": "yes"}, "is_active"),
        ({"url": 7}, "url"),
        ({"colour": "red"}, "colour"),
        ({"id": 5}, "id"),
    ],
)
def test_api_schema_webhook_input_is_strict(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    data = {"url": "https://hooks.example.com/", "secret": SECRET, **body}
    response = api.post(HOOKS, data, format="json")
    assert response.status_code == 400 and field in response.json()


@pytest.mark.parametrize(
    "query", ["offset=null", "limit=false", "limit=0", "offset=-1", "limit=5&limit=6", "limit=1.0"]
)
def test_api_schema_webhook_pagination_is_validated(api: APIClient, query: str) -> None:
    response = api.get(f"{HOOKS}?{query}")
    assert response.status_code == 400, response.content
    assert query.split("=")[0] in response.json()


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (debate(priority="5"), ["priority"]),
        (debate(delay_seconds="1.5"), ["delay_seconds"]),
        (debate(queue=12), ["queue"]),
        ({**debate(), "job_type": 1}, ["job_type"]),
        (
            {"job_type": "debate", "payload": {"question": "q", "rounds": "3"}},
            ["payload", "rounds"],
        ),
        ({"job_type": "debate", "payload": {"question": 42}}, ["payload", "question"]),
        (
            {"job_type": "debate", "payload": {"question": "q", "agents": [1]}},
            ["payload", "agents"],
        ),
        ({"job_type": "debate", "payload": {"question": "   "}}, ["payload", "question"]),
    ],
)
def test_api_schema_job_input_types_are_not_coerced(
    api: APIClient, body: dict[str, Any], path: list[str]
) -> None:
    response = api.post(JOBS, body, format="json")
    assert response.status_code == 400, response.json()
    error: Any = response.json()
    for key in path:
        error = error[key]


def test_api_schema_unknown_api_urls_answer_json(api: APIClient) -> None:
    response = api.get("/api/queue/webhooks/not.an.id/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
