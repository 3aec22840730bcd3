"""Contract of the webhook endpoints API, organization scoping and the schema."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from queue_app.models import WebhookDelivery, WebhookEndpoint
from queue_app.queue import get_queue_config
from tests.api_support import JOBS, debate, make_user, token_client

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db

HOOKS = "/api/queue/webhooks/"
SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def api(redis_url: str) -> APIClient:
    """Return a token client of alice (organization acme), with an empty private Redis."""
    return token_client(make_user("alice", "acme"))


def create(api: APIClient, **body: Any) -> dict[str, Any]:
    data = {"url": "https://hooks.example.com/aragora", "secret": SECRET, **body}
    response = api.post(HOOKS, data, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_api_webhook_create_never_returns_the_secret(api: APIClient) -> None:
    response = api.post(
        HOOKS,
        {"url": "https://hooks.example.com/a", "secret": SECRET, "event_types": ["job.failed"]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert "secret" not in body and SECRET.encode() not in response.content
    assert body["owner"] == "alice" and body["organization"] == "acme"
    assert body["event_types"] == ["job.failed"] and body["is_active"] is True
    assert body["circuit"]["state"] == "closed" and body["consecutive_failures"] == 0
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == SECRET
    listed = api.get(HOOKS)
    assert SECRET.encode() not in listed.content and listed.json()["count"] == 1
    assert SECRET.encode() not in api.get(f"{HOOKS}{body['id']}/").content


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"secret": "short"}, "secret", "at least 16"),
        ({"secret": "whsec_" + "!" * 20}, "secret", "base64"),
        ({"url": "http://10.1.2.3/hook"}, "url", "not a public address"),
        ({"url": "http://127.0.0.1:8000/hook"}, "url", "not a public address"),
        ({"url": "http://[::1]/hook"}, "url", "not a public address"),
        ({"url": "http://169.254.169.254/latest"}, "url", "not a public address"),
        ({"url": "http://localhost/hook"}, "url", "localhost"),
        ({"url": "ftp://hooks.example.com/"}, "url", "http or https"),
        ({"url": "not a url"}, "url", "valid URL"),
        ({"event_types": ["job.exploded"]}, "event_types", "not a valid choice"),
        ({"event_types": []}, "event_types", "at least 1"),
    ],
)
def test_api_webhook_create_rejects_invalid_input(
    api: APIClient, body: dict[str, Any], field: str, message: str
) -> None:
    data = {"url": "https://hooks.example.com/", "secret": SECRET, **body}
    response = api.post(HOOKS, data, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert not WebhookEndpoint.objects.exists()


def test_api_webhook_created_without_secret_gets_a_whsec_one_shown_once(api: APIClient) -> None:
    response = api.post(HOOKS, {"url": "https://hooks.example.com/a"}, format="json")
    assert response.status_code == 201
    secret = response.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == secret and secret not in endpoint.secret_encrypted
    assert secret.encode() not in api.get(HOOKS).content
    assert secret.encode() not in api.get(f"{HOOKS}{endpoint.pk}/").content
    patched = api.patch(f"{HOOKS}{endpoint.pk}/", {"is_active": False}, format="json")
    assert "secret" not in patched.json()


def test_api_webhook_private_targets_allowed_by_setting(
    api: APIClient, settings: SettingsWrapper
) -> None:
    settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE = True
    assert create(api, url="http://127.0.0.1:9000/hook")["url"] == "http://127.0.0.1:9000/hook"


def test_api_webhook_patch_rotates_secret_and_toggles(api: APIClient) -> None:
    endpoint = create(api)
    response = api.patch(
        f"{HOOKS}{endpoint['id']}/",
        {"secret": "a-brand-new-secret-value", "is_active": False},
        format="json",
    )
    assert response.status_code == 200 and "secret" not in response.json()
    assert response.json()["is_active"] is False
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).secret == "a-brand-new-secret-value"
    unchanged = api.patch(f"{HOOKS}{endpoint['id']}/", {"is_active": True}, format="json")
    assert unchanged.status_code == 200
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).secret == "a-brand-new-secret-value"


def test_api_webhook_delete_and_put_not_allowed(api: APIClient) -> None:
    endpoint = create(api)
    put = api.put(f"{HOOKS}{endpoint['id']}/", {"url": "https://x.example.com/"}, format="json")
    assert put.status_code == 405
    assert api.delete(f"{HOOKS}{endpoint['id']}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert api.delete(f"{HOOKS}{endpoint['id']}/").status_code == 404


def test_api_webhooks_are_scoped_to_the_organization(api: APIClient) -> None:
    mine = create(api)
    colleague = token_client(make_user("bob", "acme"))
    outsider = token_client(make_user("carol", "globex"))
    loner = token_client(make_user("dave"))
    staff = token_client(make_user("root", staff=True))
    theirs = create(outsider, url="https://globex.example.com/")
    url = f"{HOOKS}{mine['id']}/"
    assert [e["id"] for e in colleague.get(HOOKS).json()["results"]] == [mine["id"]]
    assert colleague.patch(url, {"is_active": False}, format="json").status_code == 200
    assert [e["id"] for e in outsider.get(HOOKS).json()["results"]] == [theirs["id"]]
    assert outsider.get(url).status_code == 404
    assert outsider.patch(url, {"is_active": True}, format="json").status_code == 404
    assert outsider.delete(url).status_code == 404
    assert loner.get(HOOKS).json()["count"] == 0
    assert staff.get(HOOKS).json()["count"] == 2


def test_api_jobs_are_scoped_to_the_organization(api: APIClient) -> None:
    job_id = api.post(JOBS, debate(), format="json").json()["id"]
    colleague = token_client(make_user("bob", "acme"))
    outsider = token_client(make_user("carol", "globex"))
    loner = token_client(make_user("dave"))
    staff = token_client(make_user("root", staff=True))
    own = loner.post(JOBS, debate(), format="json").json()["id"]
    assert colleague.get(f"{JOBS}{job_id}/").status_code == 200
    for client in (outsider, loner):
        assert client.get(f"{JOBS}{job_id}/").status_code == 404
        assert client.post(f"{JOBS}{job_id}/cancel/").status_code == 404
        assert client.post(f"{JOBS}{job_id}/retry/").status_code == 404
    assert [job["id"] for job in colleague.get(JOBS).json()["results"]] == [job_id]
    assert outsider.get(JOBS).json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }
    assert [job["id"] for job in loner.get(JOBS).json()["results"]] == [own]
    assert staff.get(JOBS).json()["count"] == 2
    assert colleague.post(f"{JOBS}{job_id}/cancel/").status_code == 200


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", JOBS),
        ("post", JOBS),
        ("get", f"{JOBS}x/"),
        ("post", f"{JOBS}x/cancel/"),
        ("post", f"{JOBS}x/retry/"),
        ("get", "/api/queue/stats/"),
        ("get", "/api/queue/workers/"),
        ("get", HOOKS),
        ("post", HOOKS),
        ("patch", f"{HOOKS}1/"),
        ("delete", f"{HOOKS}1/"),
    ],
)
def test_api_anonymous_gets_401(method: str, url: str) -> None:
    response = getattr(APIClient(), method)(url, {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "credentials" in response.json()["detail"]


def test_api_bad_token_gets_401() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(JOBS).status_code == 401


def test_api_session_login_works(redis_url: str) -> None:
    make_user("erin", "acme", password="pw-erin")
    client = APIClient()
    assert client.login(username="erin", password="pw-erin")
    assert client.post(JOBS, debate(), format="json").status_code == 201
    assert client.get(JOBS).json()["count"] == 1


def test_api_session_post_needs_csrf_token() -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user("erin", "acme"))
    response = client.post(JOBS, debate(), format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_api_schema_lists_every_endpoint(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {
        "/api/queue/jobs/",
        "/api/queue/jobs/{job_id}/",
        "/api/queue/jobs/{job_id}/cancel/",
        "/api/queue/jobs/{job_id}/retry/",
        "/api/queue/stats/",
        "/api/queue/workers/",
        "/api/queue/webhooks/",
        "/api/queue/webhooks/{id}/",
        "/api/queue/webhooks/{id}/test/",
        "/api/queue/webhooks/{id}/deliveries/",
        "/api/queue/webhooks/{id}/deliveries/{delivery_id}/redeliver/",
    } <= set(schema["paths"])
    components = schema["components"]["schemas"]
    assert "secret" not in components["WebhookEndpoint"]["properties"]  # a response: never
    assert components["WebhookEndpointRequest"]["properties"]["secret"]["writeOnly"] is True
    create = schema["paths"]["/api/queue/jobs/"]["post"]
    assert {"200", "201"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert client.get("/api/docs/").status_code == 200


def test_api_schema_generates_without_warnings(tmp_path: Path) -> None:
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/queue/jobs/{job_id}/retry/" in (tmp_path / "schema.yaml").read_text()


def pending_webhook_jobs() -> list[dict[str, Any]]:
    """Return the payloads of the pending webhook jobs, read from Redis."""
    with redis.Redis.from_url(get_queue_config().redis_url, decode_responses=True) as client:
        ids = client.zrange("aragora:queue:webhook_delivery:idx:pending", 0, -1)
        return [json.loads(client.hget(f"aragora:queue:job:{i}", "payload")) for i in ids]


def test_api_webhook_test_event_log_and_redelivery(api: APIClient) -> None:
    endpoint = create(api)
    url = f"{HOOKS}{endpoint['id']}/"
    sent = api.post(f"{url}test/")
    assert sent.status_code == 202 and sent.json()["job_type"] == "webhook_delivery"
    (payload,) = pending_webhook_jobs()
    assert payload["event_type"] == "webhook.test" and SECRET not in json.dumps(payload)
    first = WebhookDelivery.objects.create(
        endpoint_id=endpoint["id"],
        event="webhook.test",
        job_id=sent.json()["id"],
        delivery_id=payload["delivery_id"],
        attempt=1,
        status_code=503,
        duration_seconds=0.25,
        response_excerpt="busy",
    )
    log = api.get(f"{url}deliveries/").json()
    assert log["count"] == 1
    assert {k: log["results"][0][k] for k in ("status_code", "duration_seconds", "attempt")} == {
        "status_code": 503,
        "duration_seconds": 0.25,
        "attempt": 1,
    }
    assert log["results"][0]["response_excerpt"] == "busy"
    again = api.post(f"{url}deliveries/{first.pk}/redeliver/")
    assert again.status_code == 202 and again.json()["id"] != sent.json()["id"]
    payloads = pending_webhook_jobs()
    assert len(payloads) == 2 and {p["delivery_id"] for p in payloads} == {payload["delivery_id"]}
    assert api.post(f"{url}deliveries/{first.pk + 1}/redeliver/").status_code == 404
    outsider = token_client(make_user("carol", "globex"))
    assert outsider.post(f"{url}test/").status_code == 404
    assert outsider.get(f"{url}deliveries/").status_code == 404
    assert outsider.post(f"{url}deliveries/{first.pk}/redeliver/").status_code == 404


def test_api_redelivery_of_an_event_no_longer_kept_is_404(api: APIClient) -> None:
    endpoint = create(api)
    old = WebhookDelivery.objects.create(
        endpoint_id=endpoint["id"], event="job.failed", job_id="gone"
    )
    response = api.post(f"{HOOKS}{endpoint['id']}/deliveries/{old.pk}/redeliver/")
    assert response.status_code == 404 and "no longer kept" in response.json()["detail"]
