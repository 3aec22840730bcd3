"""A private Sentinel deployment on loopback ports: one master, its replica, three Sentinels."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.conftest import free_port

#: The master's name in ``sentinel monitor`` (and in the ``redis+sentinel://`` URL).
MASTER = "aragora"
#: Sentinels that must agree the master is down (of three).
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll ``check`` every 50 ms until it returns something true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
        except redis.ConnectionError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ask(port: int, *command: object) -> Any:
    """Send one command to the server or Sentinel on ``port``; return its (decoded) reply."""
    with redis.Redis(port=port, decode_responses=True, socket_timeout=2) as client:
        return client.execute_command(*command)


class SentinelSet:
    """Start the servers and Sentinels in ``directory``; ``stop()`` kills every one of them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.master_port = self._server("master")
        #: The replica reaches the master through this link, which a test can cut.
        self.link = Link(self.master_port)
        self.replica_port = self._server("replica", "--replicaof", "127.0.0.1", self.link.port)
        self.sentinel_ports = [self._sentinel(number) for number in range(3)]
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        #: The queue's ``REDIS_URL``.
        self.url = f"redis+sentinel://{hosts}/{MASTER}/0"

    def _start(self, name: str, args: list[str], port: int) -> int:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        with (self.directory / f"{name}.log").open("ab") as log:
            process = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT)
        self.processes[port] = process
        wait_for(lambda: ask(port, "PING"), 10, f"{name} to start")
        return port

    def _server(self, name: str, *more: object, port: int | None = None) -> int:
        port = port or free_port()
        folder = self.directory / name
        folder.mkdir(exist_ok=True)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(folder), "--replica-announce-ip", "127.0.0.1"]
        args += ["--repl-diskless-sync-delay", "0"]
        return self._start(name, [*args, *(str(arg) for arg in more)], port)

    def _sentinel(self, number: int) -> int:
        port = free_port()
        config = self.directory / f"sentinel-{number}.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
            "sentinel announce-ip 127.0.0.1\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
        )
        return self._start(f"sentinel-{number}", [str(config), "--sentinel"], port)

    def wait_until_monitored(self) -> None:
        """Wait until every Sentinel knows the replica and the two other Sentinels."""

        def ready() -> bool:
            for port in self.sentinel_ports:
                state = ask(port, "SENTINEL", "MASTER", MASTER)
                if (state["num-slaves"], state["num-other-sentinels"]) != ("1", "2"):
                    return False
            return True

        wait_for(ready, 20, "the Sentinels to see the replica and each other")

    def master_address(self) -> int:
        """Return the port of the master as the first Sentinel names it."""
        host, port = ask(self.sentinel_ports[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        assert host == "127.0.0.1"
        return int(port)

    def cut_replication(self) -> None:
        """Partition the replica from the master: the link drops and cannot come back."""
        self.link.cut()
        wait_for(
            lambda: ask(self.replica_port, "INFO", "replication")["master_link_status"] == "down",
            10,
            "the replica to lose its master",
        )

    def kill_master(self) -> None:
        """Kill the master with SIGKILL, as a crash would."""
        process = self.processes.pop(self.master_port)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def wait_for_failover(self, seconds: float = 30) -> int:
        """Wait until every Sentinel names the replica as master and it acts as one; its port."""

        def promoted() -> bool:
            for port in self.sentinel_ports:
                address = ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
                if int(address[1]) != self.replica_port:
                    return False
            return bool(ask(self.replica_port, "ROLE")[0] == "master")

        wait_for(promoted, seconds, "the Sentinels to promote the replica")
        return self.replica_port

    def restart_old_master_as_replica(self) -> None:
        """Bring the killed master back, empty, as a replica of the promoted one."""
        self._server("master", "--replicaof", "127.0.0.1", self.replica_port, port=self.master_port)
        wait_for(
            lambda: ask(self.master_port, "INFO", "replication")["master_link_status"] == "up",
            20,
            "the new replica to sync",
        )

    def stop(self) -> None:
        """Kill every process still running and reap it."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        self.processes.clear()
        self.link.close()


class Link:
    """A TCP relay to ``target`` on a loopback port; ``cut()`` drops it for good (a partition).

    What is in flight when it is cut is dropped with it, as on a broken network.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inbound, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                if self._cut:
                    raise ConnectionRefusedError
                outbound = socket.create_connection(("127.0.0.1", self.target))
            except OSError:  # cut, or the target is down
                inbound.close()
                continue
            self._sockets += [inbound, outbound]
            for source, sink in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            end.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self._cut = True
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Cut the link, stop listening and close every socket."""
        self.cut()
        self._listener.close()
        for end in self._sockets:
            end.close()
