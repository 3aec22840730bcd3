"""Pure webhook logic: signatures, job payloads, the body, reply classification, target checks."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json

import httpx
import pytest

from queue_app.queue import InvalidJob, Job
from workers.webhooks.delivery import (
    TargetRefused,
    classify,
    is_public_address,
    resolve_target,
    trace_headers,
)
from workers.webhooks.events import (
    MAX_EVENT_BYTES,
    WEBHOOK_JOB_TYPE,
    WebhookPayload,
    create_webhook_job,
    sign,
    verify_signature,
)

SECRET = "whsec-0123456789abcdef"
BODY = b'{"id":"d-1","event":"job.completed","created_at":1700000000.0,"data":{"x":1}}'
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    digest = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"


def test_verify_signature_accepts_a_fresh_signature() -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    assert verify_signature(SECRET, BODY, header, now=1_700_000_100)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("another-secret-of-16+", BODY, 1_700_000_000),
        (SECRET, BODY + b" ", 1_700_000_000),
        (SECRET, BODY, 1_700_000_301),  # replayed after the tolerance
        (SECRET, BODY, 1_699_999_699),  # from the future
    ],
)
def test_verify_signature_refuses_other_secret_body_or_stale_time(
    secret: str, body: bytes, now: float
) -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    assert not verify_signature(secret, body, header, now=now)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000", "garbage"])
def test_verify_signature_refuses_malformed_headers(header: str) -> None:
    assert not verify_signature(SECRET, BODY, header, now=1_700_000_000)


def test_create_webhook_job_carries_no_url_or_secret() -> None:
    job = create_webhook_job(7, "job.completed", {"job_id": "j-1"}, metadata={"owner": "3"})
    assert set(job.payload) == {
        "webhook_id",
        "event_type",
        "event_data",
        "delivery_id",
        "occurred_at",
    }
    assert job.payload["webhook_id"] == "7" and job.payload["delivery_id"] == job.id
    assert job.metadata == {"owner": "3", "job_type": WEBHOOK_JOB_TYPE}
    assert job.max_attempts == 5


def test_webhook_payload_round_trips_and_body_is_stable() -> None:
    job = create_webhook_job("wh-1", "job.failed", {"n": 1}, delivery_id="d-42")
    copy = Job.from_dict(json.loads(json.dumps(job.to_dict())))
    payload = WebhookPayload.from_job(copy)
    assert payload.body() == WebhookPayload.from_job(job).body()
    assert json.loads(payload.body()) == {
        "id": "d-42",
        "event": "job.failed",
        "created_at": job.created_at,
        "data": {"n": 1},
    }


@pytest.mark.parametrize(
    "payload",
    [
        {"event_type": "job.completed"},
        {"webhook_id": "1"},
        {"webhook_id": "1", "event_type": "job.completed", "event_data": [1, 2]},
        {"webhook_id": "", "event_type": "job.completed"},
    ],
)
def test_webhook_payload_refuses_malformed_jobs(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidJob):
        WebhookPayload.from_job(Job(payload=payload, metadata={"job_type": "webhook"}))


def test_create_webhook_job_bounds_event_data() -> None:
    with pytest.raises(InvalidJob, match="at most"):
        create_webhook_job(1, "job.completed", {"blob": "x" * MAX_EVENT_BYTES})
    with pytest.raises(InvalidJob):
        create_webhook_job(1, "job.completed", {}, max_attempts=0)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (None, "retry"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (301, "failed"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (410, "failed"),
        (422, "failed"),
    ],
)
def test_classify_reply_status(status: int | None, kind: str) -> None:
    assert classify(status) == kind


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata, link-local
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/hook",
        "ftp://93.184.216.34/hook",
    ],
)
async def test_resolve_target_refuses_private_targets(url: str) -> None:
    with pytest.raises(TargetRefused):
        await resolve_target(httpx.URL(url), allow_private=False)


async def test_resolve_target_allows_private_targets_when_asked() -> None:
    addresses = await resolve_target(httpx.URL("http://127.0.0.1:8000/"), allow_private=True)
    assert addresses == [ipaddress.ip_address("127.0.0.1")]


def test_trace_headers_forward_the_jobs_traceparent_without_baggage() -> None:
    carrier = {"traceparent": TRACEPARENT, "tracestate": "a=1", "baggage": "user=42"}
    job = Job(payload={}, metadata={"trace_context": carrier})
    assert trace_headers(job) == {"traceparent": TRACEPARENT, "tracestate": "a=1"}
    assert trace_headers(Job(payload={})) == {}
