"""`make run` (bin/run) serves the site with a private Redis and stops everything on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


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


def _wait_for_page(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, f"bin/run exited early:\n{log.read_text()}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer 200 in time:\n{log.read_text()}")


def _start_run(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
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
            start_new_session=True,
            # A shell that starts with SIGINT ignored cannot trap it, as under a background job.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return process, log


@pytest.mark.timeout(150)
def test_make_run_serves_site_and_stops_everything_on_sigint(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    process, log = _start_run(tmp_path, unused_tcp_port)
    started: set[int] = set()
    try:
        _wait_for_page(f"http://127.0.0.1:{unused_tcp_port}/admin/login/", process, log)
        started = _descendants(process.pid)
        redis_ports = [
            int(match.group(1))
            for pid in started
            if (match := re.match(r"redis-server \S+:(\d+)", _cmdline(pid)))
        ]
        assert len(redis_ports) == 1
        assert redis_ports[0] != 6379
        assert (tmp_path / "run" / "redis" / "appendonlydir").is_dir()

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, log.read_text()
        assert _alive(started) == set()
    finally:
        for pid in _alive(started | {process.pid}):
            os.kill(pid, signal.SIGKILL)
