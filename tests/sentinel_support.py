"""A private Sentinel deployment on loopback ports: one master, its replica, three Sentinels."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import redis

from tests.process_support import RedisServer, free_port, wait_for

#: The master's name in ``sentinel monitor`` (and in the ``redis+sentinel://`` URL).
MASTER = "aragora"
#: Sentinels that must agree the master is down (of three).
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


def ask(port: int, *command: object) -> Any:
    """Send one command to the server or Sentinel on ``port``; return its (decoded) reply."""
    with redis.Redis(port=port, decode_responses=True, socket_timeout=2) as client:
        return client.execute_command(*command)


def serve(directory: Path, *, replica_of: int = 0) -> RedisServer:
    """Start a data server (a replica of the server on port ``replica_of`` when given)."""
    directory.mkdir(exist_ok=True)
    server = RedisServer(directory)
    become_replica(server, replica_of)
    return server


def become_replica(server: RedisServer, master_port: int) -> None:
    """Make ``server`` (as restarted: empty) a replica of ``master_port``; 0: stay a master."""
    ask(server.port, "CONFIG", "SET", "repl-diskless-sync-delay", "0")
    ask(server.port, "CONFIG", "SET", "replica-announce-ip", "127.0.0.1")
    if master_port:
        ask(server.port, "REPLICAOF", "127.0.0.1", master_port)


class SentinelSet:
    """Start the servers and Sentinels in ``directory``; ``stop()`` kills every one of them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.master = serve(directory / "master")
        #: The replica reaches the master through this link, which a test can cut.
        self.link = Link(self.master.port)
        self.replica = serve(directory / "replica", replica_of=self.link.port)
        self.sentinel_ports = [self._sentinel(number) for number in range(3)]
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        #: The queue's ``REDIS_URL``.
        self.url = f"redis+sentinel://{hosts}/{MASTER}/0"

    def _sentinel(self, number: int) -> int:
        port = free_port()
        config = self.directory / f"sentinel-{number}.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
            "sentinel announce-ip 127.0.0.1\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
        )
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        with (self.directory / f"sentinel-{number}.log").open("ab") as log:
            args = [binary, str(config), "--sentinel"]
            self.sentinels.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        wait_for(lambda: _answers(port), 10, f"sentinel {number} to start")
        return port

    def wait_until_monitored(self) -> None:
        """Wait until every Sentinel knows the replica and the two other Sentinels."""

        def ready() -> bool:
            for port in self.sentinel_ports:
                state = ask(port, "SENTINEL", "MASTER", MASTER)
                if (state["num-slaves"], state["num-other-sentinels"]) != ("1", "2"):
                    return False
            return True

        wait_for(ready, 20, "the Sentinels to see the replica and each other")

    def cut_replication(self) -> None:
        """Partition the replica from the master: the link drops and cannot come back."""
        self.link.cut()
        wait_for(
            lambda: ask(self.replica.port, "INFO", "replication")["master_link_status"] == "down",
            10,
            "the replica to lose its master",
        )

    def kill_master(self) -> None:
        """Kill the master with SIGKILL, as a crash would."""
        self.master.kill()

    def wait_for_failover(self, seconds: float = 30) -> int:
        """Wait until every Sentinel names the replica as master and it acts as one; its port."""

        def promoted() -> bool:
            for port in self.sentinel_ports:
                address = ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
                if int(address[1]) != self.replica.port:
                    return False
            return bool(ask(self.replica.port, "ROLE")[0] == "master")

        wait_for(promoted, seconds, "the Sentinels to promote the replica")
        return self.replica.port

    def restart_old_master_as_replica(self) -> None:
        """Bring the killed master back, empty, as a replica of the promoted one."""
        self.master.restart()
        become_replica(self.master, self.replica.port)
        wait_for(
            lambda: ask(self.master.port, "INFO", "replication")["master_link_status"] == "up",
            20,
            "the new replica to sync",
        )

    def stop(self) -> None:
        """Kill every process still running and reap it."""
        for server in (self.master, self.replica):
            if server.process.poll() is None:
                server.kill()
        for process in self.sentinels:
            if process.poll() is None:
                process.kill()
            process.wait()
        self.link.close()


def _answers(port: int) -> bool:
    try:
        return bool(ask(port, "PING"))
    except redis.ConnectionError:
        return False


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
