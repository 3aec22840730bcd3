"""Pure webhook logic: signatures (checked with the standardwebhooks package), secrets at rest,
job payloads and the body, reply classification, Retry-After, target checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import time
from email.utils import formatdate

import httpx
import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook, WebhookVerificationError

from queue_app.queue import ConfigError, InvalidJob, Job, QueueConfig
from workers.webhooks import (
    MAX_EVENT_BYTES,
    WEBHOOK_JOB_TYPE,
    SecretCipher,
    SecretUnreadable,
    TargetRefused,
    WebhookPayload,
    check_secret,
    check_target,
    classify,
    create_webhook_job,
    generate_secret,
    is_public_address,
    reference_signature,
    resolve_target,
    retry_after_seconds,
    standard_headers,
)
from workers.webhooks.delivery import trace_headers

BODY = b'{"data":{"x":1},"timestamp":"2023-11-14T22:13:20Z","type":"job.completed"}'
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_generated_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    check_secret(first)


@pytest.mark.parametrize(
    ("secret", "message"),
    [("", "empty"), ("whsec_not*base64!", "base64"), ("whsec_" + "QUFB", "24 bytes")],
)
def test_check_secret_refuses_malformed_secrets(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_secret(secret)


@pytest.mark.parametrize("secret", [generate_secret(), "a-legacy-secret-of-any-form"])
def test_standard_headers_verify_with_the_standardwebhooks_package(secret: str) -> None:
    now = int(time.time())
    headers = standard_headers(secret, "msg_1", now, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    # whsec_ secrets go to Webhook as they are; any other secret as its UTF-8 bytes.
    verifier = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    assert verifier.verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verifier.verify(BODY.replace(b"1", b"2"), headers)  # tampered body
    with pytest.raises(WebhookVerificationError, match="signature"):
        verifier.verify(BODY, {**headers, "webhook-id": "msg_2"})  # another message's id
    stale = standard_headers(secret, "msg_1", now - 301, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(BODY, stale)  # replayed after the tolerance
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)  # another secret


def test_reference_signature_is_hex_hmac_sha256_of_the_body_with_the_secret() -> None:
    digest = hmac.new(b"signing-secret", BODY, hashlib.sha256).hexdigest()
    assert reference_signature("signing-secret", BODY) == f"sha256={digest}"


def test_cipher_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretCipher([old]).encrypt("whsec-plain")
    assert "whsec-plain" not in token
    rotated = SecretCipher([new, old])
    assert rotated.decrypt(token) == "whsec-plain"
    fresh = rotated.rotate(token)
    assert SecretCipher([new]).decrypt(fresh) == "whsec-plain"
    with pytest.raises(SecretUnreadable):
        SecretCipher([new]).decrypt(token)
    with pytest.raises(ConfigError, match="ARAGORA_WEBHOOK_SECRET_KEYS"):
        SecretCipher([])


def test_queue_config_reads_and_checks_secret_keys_without_echoing_them() -> None:
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    config = QueueConfig.from_env({"ARAGORA_WEBHOOK_SECRET_KEYS": f" {keys[0]} , {keys[1]} "})
    assert config.webhook_secret_keys == tuple(keys)
    assert keys[0] not in repr(config)
    with pytest.raises(ConfigError, match="key 2 is not a Fernet key") as caught:
        QueueConfig.from_env({"ARAGORA_WEBHOOK_SECRET_KEYS": f"{keys[0]},not-a-key"})
    assert "not-a-key" not in str(caught.value)


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
    assert job.metadata == {
        "owner": "3",
        "job_type": WEBHOOK_JOB_TYPE,
        "event_type": "job.completed",
    }
    assert job.max_attempts == 5
    fixed = create_webhook_job(7, "job.completed", {}, job_id="evt-1")
    assert (fixed.id, fixed.payload["delivery_id"]) == ("evt-1", "evt-1")


def test_webhook_payload_round_trips_and_body_is_standard_and_stable() -> None:
    job = create_webhook_job("wh-1", "job.failed", {"n": 1}, delivery_id="d-42")
    job.created_at = job.payload["occurred_at"] = 1_700_000_000.25
    copy = Job.from_dict(json.loads(json.dumps(job.to_dict())))
    payload = WebhookPayload.from_job(copy)
    assert payload.body() == WebhookPayload.from_job(job).body()
    assert json.loads(payload.body()) == {
        "type": "job.failed",
        "timestamp": "2023-11-14T22:13:20.250000Z",
        "data": {"n": 1},
    }
    assert payload.delivery_id == "d-42"


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
        WebhookPayload.from_job(Job(payload=payload, metadata={"job_type": WEBHOOK_JOB_TYPE}))


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


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0)
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now) == 0.0
    for junk in (None, "", "soon", "-5"):
        assert retry_after_seconds(junk, now) is None


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
    ("url", "message"),
    [
        ("http://127.0.0.1:8000/hook", "not a public address"),
        ("http://[::1]/hook", "not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://localhost/hook", "localhost"),
        ("ftp://93.184.216.34/hook", "http or https"),
        ("not a url", "http or https"),
    ],
)
def test_check_target_refuses_private_or_odd_targets(url: str, message: str) -> None:
    with pytest.raises(TargetRefused, match=message):
        check_target(url, allow_private=False)
    check_target("https://hooks.example.com/x", allow_private=False)  # names resolve later
    if url.startswith("http:"):
        check_target(url, allow_private=True)


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
