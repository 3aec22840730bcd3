"""The image's entry commands, run as compose.yaml runs them, with this checkout's venv.

No container engine runs here: each service's command (from `docker compose config`) runs as a
process with the service's variables, SQLite and a private Redis standing in for PostgreSQL and
the `redis` service, and its compose health check (bin/probe) must pass.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from pathlib import Path

import httpx
import redis

from tests.compose_support import rendered
from tests.obs_support import ROOT, Process, base_env, free_port, wait_for

VENV_BIN = ROOT / ".venv" / "bin"


def service_env(name: str, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Return the variables of service ``name``, with this machine's Redis, SQLite and venv."""
    spec = rendered("with-workers")["services"][name]
    env = base_env(redis_url, tmp_path, **spec["environment"])
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PATH=f"{VENV_BIN}:{env['PATH']}",  # `python` in the commands is the image's (the venv's)
        **extra,
    )
    return env


def probe(*args: str) -> bool:
    """Run the compose health check command; True when it passes."""
    return subprocess.run([str(ROOT / "bin" / "probe"), *args], timeout=10).returncode == 0


def test_image_web_entrypoint_migrates_then_serves(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = service_env("web", redis_url, tmp_path, HOST="127.0.0.1", PORT=str(port))
    command = rendered()["services"]["web"]["command"]
    web = Process([str(ROOT / "docker" / "entrypoint"), *command], env, tmp_path / "web.log")
    try:
        healthz = f"http://127.0.0.1:{port}/healthz"
        wait_for(lambda: web.popen.poll() is None and probe(healthz, "web"), "web health", 60)
        # Prometheus's scrape: Host web:8000 and its bearer token, queue gauges included.
        scrape = {"Host": f"web:{port}", "Authorization": f"Bearer {env['ARAGORA_METRICS_TOKEN']}"}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=scrape)
        assert metrics.status_code == 200 and "aragora_queue_redis_up 1.0" in metrics.text
        anonymous = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Host": f"web:{port}"})
        assert anonymous.status_code == 401
        refused = httpx.get(healthz, headers={"Host": "elsewhere.example"})
        assert refused.status_code == 400  # the allowed hosts are still a list
    finally:
        assert web.stop() == 0, web.output()
    assert "Applying queue_app." in web.output()
    with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db:
        assert db.execute("SELECT COUNT(*) FROM queue_app_jobrecord").fetchone() == (0,)


def test_image_worker_command_serves_its_health_check(redis_url: str, tmp_path: Path) -> None:
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=service_env("web", redis_url, tmp_path),
        check=True,
    )
    port = free_port()
    command = rendered("with-workers")["services"]["debate-worker"]["command"]
    command[command.index("--metrics-port") + 1] = str(port)  # a free port here
    env = service_env("debate-worker", redis_url, tmp_path)
    worker = Process([str(ROOT / "docker" / "entrypoint"), *command], env, tmp_path / "w.log")
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        wait_for(lambda: worker.popen.poll() is None and probe(url), "worker health", 60)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "aragora_queue_active_jobs" in scraped
    finally:
        assert worker.stop() == 0, worker.output()


def test_image_ledger_command_runs_until_stopped(redis_url: str, tmp_path: Path) -> None:
    env = service_env("ledger", redis_url, tmp_path)
    subprocess.run(
        ["python", "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    command = rendered("with-workers")["services"]["ledger"]["command"]
    clients = redis.Redis.from_url(redis_url)
    # Connections get increasing ids: one newer than this client's is the ledger's (it installs
    # its signal handlers before it connects).
    before = max(int(client["id"]) for client in clients.client_list())
    ledger = Process([str(ROOT / "docker" / "entrypoint"), *command], env, tmp_path / "l.log")
    try:

        def connected() -> bool:
            assert ledger.popen.poll() is None, ledger.output()
            return any(int(client["id"]) > before for client in clients.client_list())

        wait_for(connected, "the ledger writer's Redis connection", 60)
    finally:
        clients.close()
        assert ledger.stop() == 0, ledger.output()
