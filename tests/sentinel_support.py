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
#: Source address of the replicas' connections (any 127.0.0.0/8 address is local).
REPLICA_SOURCE = "127.0.0.3"


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
    # Its connections to the master come from their own address, which a Link can cut; a
    # protected server would refuse them (only 127.0.0.1 counts as loopback; all bind 127.0.0.1).
    ask(server.port, "CONFIG", "SET", "bind-source-addr", REPLICA_SOURCE)
    ask(server.port, "CONFIG", "SET", "protected-mode", "no")
    if master_port:
        ask(server.port, "REPLICAOF", "127.0.0.1", master_port)


class SentinelSet:
    """Start the servers and Sentinels in ``directory``; ``stop()`` kills every one of them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.master = serve(directory / "master")
        #: Everyone reaches the master through this link (its port is the master's address for
        #: the Sentinels, so the replica's matches theirs); a test can cut the replica off it.
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
            f"sentinel monitor {MASTER} 127.0.0.1 {self.link.port} {QUORUM}\n"
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
        """Partition the replica from the master (the master still reaches everyone else)."""
        self.link.cut(REPLICA_SOURCE)
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

    def replication(self) -> str:
        """Describe each server's replication state and the Sentinels' master, for a failure."""
        parts = []
        for name, server in (("old master", self.master), ("replica", self.replica)):
            try:
                info = ask(server.port, "INFO", "replication")
            except redis.RedisError as error:
                parts.append(f"{name}: {type(error).__name__}")
                continue
            fields = ("role", "master_port", "master_link_status", "connected_slaves")
            parts.append(f"{name}: " + " ".join(f"{f}={info.get(f, '-')}" for f in fields))
        masters = []
        for port in self.sentinel_ports:
            try:
                masters.append(str(ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)[1]))
            except redis.RedisError as error:
                masters.append(type(error).__name__)
        ports = f"master {self.master.port}, link {self.link.port}, replica {self.replica.port}"
        return f"{'; '.join(parts)}; Sentinels name port {', '.join(masters)} ({ports})"

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
    """A TCP relay to ``target`` on a loopback port; ``cut()`` partitions one peer address.

    Connections from the cut address are dropped with what is in flight, and refused from then
    on, as on a broken network; other peers go on.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[tuple[str, socket.socket, socket.socket]] = []
        self._cut = ""
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inbound, (peer, _) = self._listener.accept()
            except OSError:  # closed
                return
            try:
                if peer == self._cut:
                    raise ConnectionRefusedError
                outbound = socket.create_connection(("127.0.0.1", self.target))
            except OSError:  # cut, or the target is down
                inbound.close()
                continue
            self._sockets.append((peer, inbound, outbound))
            for source, sink in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        # shutdown, not just close: the other pump may be blocked reading one of these sockets,
        # and only shutdown wakes it and tells the far end at once.
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def cut(self, peer: str) -> None:
        """Drop the connections from ``peer`` and refuse its new ones."""
        self._cut = peer
        for ends in [ends for source, *ends in self._sockets if source == peer]:
            for end in ends:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop listening and close every socket."""
        self._listener.close()
        for _, *ends in self._sockets:
            for end in ends:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
