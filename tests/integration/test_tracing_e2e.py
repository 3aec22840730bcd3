"""One trace from a REST enqueue (web process) to the worker's job and its httpx calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from pytest_httpserver import HTTPServer

from tests.obs_support import ROOT, base_env, start_web, start_worker, wait_for, wait_ready

ANSWER = "After weighing it: ANSWER: yes\nCONFIDENCE: 0.9"
SECRETS = ("sk-ant-e2e-secret", "sk-oai-e2e-secret")
CREATE_TOKEN = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
print(Token.objects.create(user=User.objects.create_user("tracer")).key)
"""


def _fake_providers(httpserver: HTTPServer) -> None:
    anthropic = {"content": [{"type": "text", "text": ANSWER}]}
    anthropic["usage"] = {"input_tokens": 12, "output_tokens": 7}  # type: ignore[assignment]
    openai = {"choices": [{"message": {"content": ANSWER}}]}
    openai["usage"] = {"prompt_tokens": 12, "completion_tokens": 7}  # type: ignore[assignment]
    httpserver.expect_request("/v1/messages", method="POST").respond_with_json(anthropic)
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(openai)


def _spans(path: Path) -> list[dict[str, Any]]:
    spans = []
    for line in path.read_text().splitlines():
        span = json.loads(line)
        span["id"] = span["context"]["span_id"][2:]
        span["trace"] = span["context"]["trace_id"][2:]
        span["parent"] = (span["parent_id"] or "0x")[2:] or None
        span["service"] = span["resource"]["attributes"]["service.name"]
        spans.append(span)
    return spans


def _one(spans: list[dict[str, Any]], kind: str, **attributes: Any) -> dict[str, Any]:
    found = [
        s
        for s in spans
        if s["kind"] == f"SpanKind.{kind}"
        and all(s["attributes"].get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (kind, attributes, [s["name"] for s in spans])
    return found[0]


def _ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    chain = []
    while span["parent"] in by_id:
        span = by_id[span["parent"]]
        chain.append(span["id"])
    return chain


def _enqueue_and_wait(api: httpx.Client) -> dict[str, Any]:
    payload = {"question": "Is Redis a database?", "agents": ["anthropic-api", "openai-api"]}
    created = api.post("/api/queue/jobs/", json={"job_type": "debate", "payload": payload})
    assert created.status_code == 201, created.text
    job: dict[str, Any] = created.json()
    wait_for(
        lambda: api.get(f"/api/queue/jobs/{job['id']}/").json()["status"] == "completed",
        "the debate to complete",
        seconds=30,
    )
    return job


def test_tracing_follows_a_job_from_rest_enqueue_to_its_http_calls(
    redis_url: str, tmp_path: Path, httpserver: HTTPServer
) -> None:
    _fake_providers(httpserver)
    providers = httpserver.url_for("/").rstrip("/")
    web_env = base_env(redis_url, tmp_path, ARAGORA_OTEL_FILE=str(tmp_path / "web.jsonl"))
    worker_env = base_env(
        redis_url,
        tmp_path,
        ARAGORA_OTEL_FILE=str(tmp_path / "worker.jsonl"),
        ARAGORA_LOG_LEVEL="DEBUG",
        ANTHROPIC_API_KEY=SECRETS[0],
        OPENAI_API_KEY=SECRETS[1],
        ANTHROPIC_BASE_URL=providers,
        OPENAI_BASE_URL=providers,
    )
    worker, port = start_worker(worker_env, tmp_path / "worker.log", queues="debates")
    web, url = start_web(web_env, tmp_path / "web.log")
    try:
        token = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", CREATE_TOKEN],
            cwd=ROOT, env=web_env, check=True, capture_output=True, text=True,
        ).stdout.split()[-1]  # fmt: skip
        wait_ready(f"{url}/readyz", web)
        wait_ready(f"http://127.0.0.1:{port}/readyz", worker)
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}) as api:
            job = _enqueue_and_wait(api)
    finally:
        worker.stop()
        web.stop()
    web_spans, worker_spans = _spans(tmp_path / "web.jsonl"), _spans(tmp_path / "worker.jsonl")
    by_id = {span["id"]: span for span in web_spans + worker_spans}

    request = _one(web_spans, "SERVER", **{"http.route": "api/queue/jobs/"})
    producer = _one(web_spans, "PRODUCER", **{"messaging.message.id": job["id"]})
    consumer = _one(worker_spans, "CONSUMER", **{"messaging.message.id": job["id"]})
    calls = [s for s in worker_spans if s["kind"] == "SpanKind.CLIENT" and s["name"] == "POST"]
    assert job["trace_id"] == request["trace"]
    assert {s["trace"] for s in (request, producer, consumer, *calls)} == {request["trace"]}
    assert request["parent"] is None and request["service"] == "aragora-web"
    assert producer["parent"] == request["id"]
    assert consumer["parent"] == producer["id"] and consumer["service"] == "aragora-worker"
    assert consumer["attributes"]["messaging.system"] == "redis"
    assert consumer["attributes"]["messaging.destination.name"] == "debates"
    assert consumer["attributes"]["aragora.job.attempt"] == 1
    assert len(calls) == 2
    for call in calls:
        assert consumer["id"] in _ancestors(call, by_id)
    # The providers saw the httpx spans as their parents.
    sent = {req.headers["traceparent"].split("-")[2] for req, _ in httpserver.log}
    assert sent == {call["id"] for call in calls}
    # Redis calls are recorded inside the request, never as traces of their own.
    redis_spans = [s for s in web_spans + worker_spans if s["attributes"].get("db.system")]
    assert any(request["id"] in _ancestors(s, by_id) for s in redis_spans)
    assert all(s["parent"] for s in redis_spans)
    # The worker's log line for the job carries the trace; no secret is written anywhere.
    started = [
        line
        for line in worker.json_lines()
        if line.get("event") == "job.started" and line.get("job_id") == job["id"]
    ]
    assert [line["trace_id"] for line in started] == [request["trace"]]
    written = worker.output() + (tmp_path / "worker.jsonl").read_text()
    assert not any(secret in written for secret in SECRETS)
    _print_tree([s for s in by_id.values() if s["trace"] == request["trace"]], by_id)


def _print_tree(spans: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> None:
    """Print the trace (``pytest -s`` shows it): service, span name, id, parent id."""
    for span in sorted(spans, key=lambda s: len(_ancestors(s, by_id))):
        depth = len(_ancestors(span, by_id))
        print(f"{'  ' * depth}{span['service']}: {span['name']} {span['id']} <- {span['parent']}")
