"""A real Prometheus scrapes the web and a worker; promtool checks the shipped config and rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.obs_support import (
    ROOT,
    Process,
    base_env,
    enqueue,
    free_port,
    scrape,
    start_web,
    start_worker,
    value,
    wait_for,
    wait_ready,
)

PROMETHEUS_DIR = ROOT / "docker" / "prometheus"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "aragora-queue.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # bin/setup --test installs Debian's prometheus package
        pytest.fail(f"{name} is not installed: run `make test` (bin/setup --test)")
    return path


def _web_authorization(token_file: Path) -> dict[str, str]:
    """Return the shipped web job's ``authorization``, its credentials read from ``token_file``
    (compose mounts the secret at the shipped path, which promtool requires to exist)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (web,) = (job for job in config["scrape_configs"] if job["job_name"] == "aragora-web")
    return {**web["authorization"], "credentials_file": str(token_file)}


def test_prometheus_shipped_config_passes_promtool(tmp_path: Path) -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    token_file = tmp_path / "metrics_token"
    token_file.write_text("token")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            job["authorization"] = _web_authorization(token_file)
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([_tool("promtool"), "check", "config", str(path)], capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ],
    ids=["check-rules", "test-rules"],
)
def test_prometheus_shipped_files_pass_promtool(args: list[str]) -> None:
    result = subprocess.run(
        [_tool("promtool"), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


class Prometheus:
    """A ``prometheus`` server on a free loopback port scraping the given targets every second."""

    def __init__(self, tmp_path: Path, targets: dict[str, dict[str, Any]]) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        jobs = [{"job_name": job, **settings} for job, settings in targets.items()]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(PROMETHEUS_DIR / "alerts.yml")],
            "scrape_configs": jobs,
        }
        path = tmp_path / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        subprocess.run([_tool("promtool"), "check", "config", str(path)], check=True)
        args = [_tool("prometheus"), f"--config.file={path}"]
        args += [f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={self.url[7:]}"]
        self.process = Process(args, {}, tmp_path / "prometheus.log")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Run an instant query; return its result vector."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        body = response.json()
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def scalar(self, expr: str) -> float | None:
        """Return the value of a one-series query, or None when it has no series."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[tuple[Prometheus, str]]:
    token_file = tmp_path / "metrics_token"
    token_file.write_text("e2e-metrics-token\n")
    env = base_env(redis_url, tmp_path, ARAGORA_METRICS_TOKEN="e2e-metrics-token")
    worker, worker_port = start_worker(env, tmp_path / "worker.log")
    web, web_url = start_web(env, tmp_path / "web.log")
    prometheus = None
    try:
        wait_ready(f"{web_url}/readyz", web)
        wait_ready(f"http://127.0.0.1:{worker_port}/readyz", worker)
        assert httpx.get(f"{web_url}/metrics").status_code == 401
        targets = {
            "aragora-web": {
                "static_configs": [{"targets": [web_url[7:]]}],
                "authorization": _web_authorization(token_file),
            },
            "aragora-worker": {"static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
        }
        prometheus = Prometheus(tmp_path, targets)
        wait_ready(f"{prometheus.url}/-/ready", prometheus.process)
        yield prometheus, f"http://127.0.0.1:{worker_port}"
    finally:
        for process in (prometheus.process if prometheus else None, worker, web):
            if process is not None:
                process.stop()


def test_prometheus_reads_web_and_worker_series(
    stack: tuple[Prometheus, str], redis_url: str
) -> None:
    prometheus, worker = stack
    enqueue(redis_url, [("noop", {})] * 4 + [("fail", {"permanent": True})])

    def finished() -> bool:
        samples = scrape(f"{worker}/metrics")
        failed = value(
            samples, "aragora_queue_jobs_failed_total", queue="diagnostics", job_type="fail"
        )
        return failed == 1

    wait_for(finished, "the worker to finish the jobs")
    diag = 'queue="diagnostics"'
    expected = {
        f'aragora_queue_jobs_completed_total{{job="aragora-worker",{diag},job_type="noop"}}': 4,
        f'aragora_queue_job_duration_seconds_count{{{diag},job_type="noop"}}': 4,
        f'aragora_queue_jobs_failed_total{{{diag},job_type="fail"}}': 1,
        f"aragora_queue_active_jobs{{{diag}}}": 0,
        f'aragora_queue_jobs{{job="aragora-web",{diag},status="completed"}}': 4,
        f"aragora_queue_dead_letter_jobs{{{diag}}}": 1,
        f"aragora_queue_depth{{{diag}}}": 0,
        "aragora_queue_live_workers": 1,
        'up{job="aragora-web"}': 1,
        'up{job="aragora-worker"}': 1,
    }

    def all_read() -> bool:
        return all(prometheus.scalar(expr) == want for expr, want in expected.items())

    wait_for(all_read, "Prometheus to scrape the final values", seconds=20)
    assert prometheus.scalar("sum(django_http_requests_total_by_method_total)") >= 1
    rules = httpx.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
    assert {rule["name"] for group in rules for rule in group["rules"]} >= {
        "AragoraQueueNoLiveWorkers",
        "AragoraQueueDeadLettersGrowing",
    }
    for expr in _dashboard_queries():
        prometheus.query(expr)  # every dashboard query is valid PromQL


def _dashboard_queries() -> Iterator[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"].replace("$__rate_interval", "1m").replace("$queue", ".*")
