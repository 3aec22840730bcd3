"""Processes of the fault tests: private ``redis-server`` and ``manage.py queue_worker``.

The pytest fixtures (``tests/conftest.py``), the acceptance tests and the chaos run
(``chaos/``) all start their servers and workers with these classes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import redis

ROOT = Path(__file__).resolve().parents[1]
#: How long a starting redis-server may take to answer PING.
START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """Return the first truthy ``check()``, polled every 0.1 s; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class RedisServer:
    """A private ``redis-server`` subprocess with its own data directory.

    It listens on ``host`` (127.0.0.1 unless told) and on any ``also_bind`` addresses only;
    protected mode, which refuses clients from outside loopback, is off when those are not
    loopback addresses (the network tests bind private veth addresses).
    """

    def __init__(
        self,
        directory: Path,
        *,
        appendonly: bool = False,
        port: int | None = None,
        host: str = "127.0.0.1",
        also_bind: Sequence[str] = (),
        extra: Sequence[str] = (),
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make setup`")
        #: TCP port; kept across restart().
        self.port = port or free_port()
        self.host = host
        self.directory = directory
        self.url = f"redis://{host}:{self.port}/0"
        bind = " ".join([host, *also_bind])
        self._args = [binary, "--port", str(self.port), "--bind", bind, "--save", ""]
        self._args += ["--appendonly", "yes" if appendonly else "no", "--dir", str(directory)]
        if any(not address.startswith("127.") for address in [host, *also_bind]):
            self._args += ["--protected-mode", "no"]
        self._args += extra  # more options (``--cluster-enabled yes``...)
        self.process: subprocess.Popen[bytes]
        self._start()

    def _start(self) -> None:
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_for_ping()

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with redis.Redis(host=self.host, port=self.port, socket_timeout=1) as client:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    client.ping()
                except redis.ConnectionError:
                    time.sleep(0.05)
                else:
                    return
        self.stop()
        log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{log}")

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and reap it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        """Start the server again on the same port with the same arguments."""
        if self.process.poll() is None:
            self.kill()
        self._start()

    def stop(self) -> None:
        """Stop the server with SIGTERM (SIGKILL after 5 s) and reap it."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


class WorkerProcesses:
    """Start ``manage.py queue_worker`` subprocesses against one Redis; kill them all at the end.

    Each worker logs to ``<log_dir>/<worker id>.log``. ``env`` is added to the environment of
    every worker; ``prefix`` runs the command under another (``ip netns exec <name>``).
    """

    def __init__(
        self,
        redis_url: str,
        log_dir: Path,
        *,
        queues: str = "diagnostics",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.queues = queues
        self.env = dict(env or {})
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def start(
        self, worker_id: str, *flags: str, prefix: Sequence[str] = (), redis_url: str = ""
    ) -> subprocess.Popen[bytes]:
        """Start the worker ``worker_id`` with extra ``flags``; return its process."""
        env = {**os.environ, **self.env, "REDIS_URL": redis_url or self.redis_url}
        args = ["--queues", self.queues, "--worker-id", worker_id, "--no-ledger", *flags]
        log = self.log_path(worker_id).open("wb")
        self.logs.append(log)
        process = subprocess.Popen(
            [*prefix, sys.executable, "manage.py", "queue_worker", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log_path(self, worker_id: str) -> Path:
        """Return the log file of ``worker_id``."""
        return self.log_dir / f"{worker_id.replace('/', '_')}.log"

    def stop_all(self) -> None:
        """Kill every worker still running (waking stopped ones first) and close the logs."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.wait()
        for log in self.logs:
            log.close()
