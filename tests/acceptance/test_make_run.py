"""`make run` (bin/run): private Redis, landing page, graceful Ctrl-C, port clash, recorded env."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from queue_app.queue import Job, JobStatus, create_redis_queue, get_queue_config
from tests.conftest import RedisServer

ROOT = Path(__file__).resolve().parents[2]
#: Seconds the diagnostics job runs: long enough to be running when Ctrl-C comes.
JOB_SECONDS = 4.0


def _proc_table() -> dict[int, tuple[int, str]]:
    """Return ``{pid: (parent pid, state)}`` of every process, read from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        state, ppid = text.rpartition(")")[2].split()[:2]
        table[int(stat.parent.name)] = (int(ppid), state)
    return table


def _descendants(pid: int) -> set[int]:
    children = defaultdict(list)
    for child, (parent, _) in _proc_table().items():
        children[parent].append(child)
    found, todo = set(), [pid]
    while todo:
        todo.extend(children[todo.pop()])
        found.update(todo)
    return found


def _alive(pids: set[int]) -> set[int]:
    table = _proc_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _wait_for_page(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, f"bin/run exited early:\n{log.read_text()}"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer 200 in time:\n{log.read_text()}")


def _start_run(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    unset = {"REDIS_URL", "DATABASE_URL", "ARAGORA_SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.pop("ARAGORA_LOG_FORMAT", None)
    # A run folder of its own (SQLite, static files, Redis data): never the developer's .run/.
    env.update(PORT=str(port), ARAGORA_RUN_DIR=str(tmp_path / "run"))
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [ROOT / "bin" / "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group, as a terminal's foreground job: Ctrl-C is killpg(SIGINT).
            start_new_session=True,
            # A shell that starts with SIGINT ignored cannot trap it, as under a background job.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return process, log


def _env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


async def _enqueue_sleep(redis_url: str) -> str:
    """Enqueue a diagnostics ``sleep`` job and return its id once a worker runs it."""
    queue = await create_redis_queue(redis_url, config=get_queue_config())
    try:
        job = Job(payload={"seconds": JOB_SECONDS}, metadata={"job_type": "sleep"})
        await queue.enqueue(job, queue_name="diagnostics")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            running = await queue.get_status(job.id)
            if running is not None and running.status is JobStatus.PROCESSING:
                return job.id
            await asyncio.sleep(0.05)
        pytest.fail("the worker of make run did not start the job")
    finally:
        await queue.close()


async def _job_after_restart(server: RedisServer, job_id: str) -> Job | None:
    queue = await create_redis_queue(server.url, config=get_queue_config())
    try:
        return await queue.get_status(job_id)
    finally:
        await queue.close()


@pytest.mark.timeout(180)
def test_make_run_drains_running_jobs_on_ctrl_c_and_stops_everything(
    tmp_path: Path, unused_tcp_port: int, redis_server_factory: Callable[..., RedisServer]
) -> None:
    process, log = _start_run(tmp_path, unused_tcp_port)
    started: set[int] = set()
    try:
        landing = _wait_for_page(f"http://127.0.0.1:{unused_tcp_port}/", process, log)
        for link in ("/admin/", "/admin/queue/dashboard/", "/api/docs/", "/metrics", "/healthz"):
            assert f'href="{link}"' in landing.text
        started = _descendants(process.pid)
        redis_ports = [
            int(match.group(1))
            for pid in started
            if (match := re.match(r"redis-server \S+:(\d+)", _cmdline(pid)))
        ]
        assert len(redis_ports) == 1 and redis_ports[0] != 6379
        recorded = _env_file(tmp_path / "run" / "env")
        assert recorded == {
            "REDIS_URL": f"redis://127.0.0.1:{redis_ports[0]}/0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'run' / 'db.sqlite3'}",
            "ARAGORA_RUN_DIR": str(tmp_path / "run"),
        }
        secret_key = tmp_path / "run" / "secret-key"  # generated once, kept private
        assert len(secret_key.read_text().strip()) >= 50
        assert secret_key.stat().st_mode & 0o077 == 0
        job_id = asyncio.run(_enqueue_sleep(recorded["REDIS_URL"]))

        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert process.wait(timeout=60) == 0, log.read_text()
        assert _alive(started) == set()
    finally:
        for pid in _alive(started | {process.pid}):
            os.kill(pid, signal.SIGKILL)
    output = log.read_text()
    # The banner comes once the site answers; it names the password's file, never the password.
    assert output.index("Listening at") < output.index("run: site")
    password = (tmp_path / "run" / "admin-password").read_text().strip()
    assert "run/admin-password)" in output and password not in output
    assert "exiting now" not in output  # one signal reached the worker, not two
    worker_line = next(line for line in output.splitlines() if "finishing in-flight" in line)
    assert not worker_line.startswith("{")  # text logs in development
    server = redis_server_factory(appendonly=True, directory=tmp_path / "run" / "redis")
    job = asyncio.run(_job_after_restart(server, job_id))
    assert job is not None and job.status is JobStatus.COMPLETED, job


def test_make_run_port_clash_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, log = _start_run(tmp_path, port)
        assert process.wait(timeout=30) == 1
    output = log.read_text()
    assert output == (
        f"run: port {port} is already in use (another make run?); "
        f"pick another one: PORT={port + 1} make run\n"
    )


def test_with_run_env_reads_the_recorded_env_and_lets_the_environment_win(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "env").write_text(
        "# comment\nREDIS_URL=redis://127.0.0.1:1234/0\nDATABASE_URL=sqlite:///x.db\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    show = [
        sys.executable,
        "-c",
        "import os; print(os.environ['REDIS_URL'], os.environ['DATABASE_URL'])",
    ]
    command = [ROOT / "bin" / "with-run-env", *show]
    env["ARAGORA_RUN_DIR"] = str(run_dir)
    found = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["redis://127.0.0.1:1234/0", "sqlite:///x.db"]
    env["REDIS_URL"] = "redis://elsewhere:6380/1"
    found = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["redis://elsewhere:6380/1", "sqlite:///x.db"]
    env["ARAGORA_RUN_DIR"] = str(tmp_path / "none")
    missing = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert (
        "start `make run` first" in missing.stderr and "KeyError: 'DATABASE_URL'" in missing.stderr
    )
