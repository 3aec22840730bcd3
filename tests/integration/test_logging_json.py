"""Log lines: JSON by default (text on request), job context and trace ids, no secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from queue_app.observability.logformat import JsonFormatter, TextFormatter
from queue_app.queue import Job
from tests.obs_support import ROOT, base_env, enqueue, start_worker, wait_for, wait_ready
from workers.runtime.middleware import log_extra

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("tests.logging")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, message, args, None, extra=extra
    )


def _job() -> Job:
    return Job(payload={}, metadata={"job_type": "noop"}, queue="diagnostics", attempts=2,
               worker_id="w-1")  # fmt: skip


def _in_span() -> NonRecordingSpan:
    context = SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    return NonRecordingSpan(context)


def test_logging_json_line_carries_job_context_and_trace_ids() -> None:
    job = _job()
    with trace.use_span(_in_span()):
        record = _record("job %s", "completed", **log_extra(job, "job.completed"))
        line = JsonFormatter().format(record)
    document = json.loads(line)
    assert "\n" not in line
    assert document["level"] == "INFO"
    assert document["logger"] == "tests.logging"
    assert document["message"] == "job completed"
    assert document["timestamp"].endswith("+00:00")
    assert document["event"] == "job.completed"
    assert document["job_id"] == job.id
    assert (document["queue"], document["attempt"], document["worker_id"]) == (
        "diagnostics",
        2,
        "w-1",
    )
    assert document["trace_id"] == format(TRACE_ID, "032x")
    assert document["span_id"] == format(SPAN_ID, "016x")


def test_logging_json_redacts_secrets() -> None:
    record = _record(
        "cannot reach %s",
        "redis://admin:hunter2@redis:6379/0",
        signing_secret="whsec-1",
        api_key="sk-2",
        authorization="Bearer tok-3",
    )
    try:
        raise ConnectionError("postgres://app:pw-4@db/app refused")
    except ConnectionError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    for secret in ("hunter2", "whsec-1", "sk-2", "tok-3", "pw-4"):
        assert secret not in line
    document = json.loads(line)
    assert document["message"] == "cannot reach redis://admin:[redacted]@redis:6379/0"
    assert document["signing_secret"] == "[redacted]"
    assert "ConnectionError" in document["exception"]


def test_logging_text_format_appends_job_context() -> None:
    job = _job()
    with trace.use_span(_in_span()):
        line = TextFormatter().format(_record("job retried", **log_extra(job, "job.retried")))
    assert " INFO tests.logging job retried event=job.retried " in line
    assert f"job_id={job.id} queue=diagnostics job_type=noop attempt=2 worker_id=w-1" in line
    assert line.endswith(f"trace_id={TRACE_ID:032x}")


def test_logging_format_setting_is_checked(tmp_path: Path) -> None:
    env = base_env("redis://127.0.0.1:1/0", tmp_path, ARAGORA_LOG_FORMAT="xml")
    code = "import django; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "ARAGORA_LOG_FORMAT must be json or text" in result.stderr


def test_logging_worker_writes_json_lines(redis_url: str, tmp_path: Path) -> None:
    worker, port = start_worker(base_env(redis_url, tmp_path), tmp_path / "worker.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", worker)
        [failing] = enqueue(redis_url, [("fail", {"permanent": True})], max_attempts=2)
        [flaky] = enqueue(redis_url, [("fail", {"succeed_on": 2})])

        def events() -> dict[str, dict[str, object]]:
            seen = {(line.get("job_id"), line.get("event")): line for line in worker.json_lines()}
            return seen if {(failing, "job.failed"), (flaky, "job.retried")} <= seen.keys() else {}

        seen = wait_for(events, "the failure and the retry to be logged")
    finally:
        assert worker.stop() == 0
    failed, retried = seen[(failing, "job.failed")], seen[(flaky, "job.retried")]
    assert failed["level"] == "ERROR"
    assert (failed["queue"], failed["attempt"], failed["job_type"]) == ("diagnostics", 1, "fail")
    assert failed["worker_id"] == f"obs-{port}"
    assert "ValueError: permanent diagnostic failure" in str(failed["exception"])
    assert retried["level"] == "INFO"
    assert retried["attempt"] == 1
    lines = worker.output().splitlines()
    assert all(line.startswith("{") for line in lines if line.strip()), lines
