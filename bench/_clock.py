"""Wall time, the client's CPU time and the Redis server's CPU time of a measured run."""

from __future__ import annotations

import time

import redis


class Clock:
    """Read the three clocks of a run against one Redis server."""

    def __init__(self, url: str) -> None:
        self.server = redis.Redis.from_url(url)

    def read(self) -> tuple[float, float, float]:
        """Return (wall, client CPU, server CPU) seconds so far."""
        info = self.server.info("cpu")
        cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return time.perf_counter(), time.process_time(), cpu

    @staticmethod
    def per_job(before: tuple[float, ...], after: tuple[float, ...], count: int) -> str:
        """Return "wall client server" microseconds per job between two readings."""
        return " ".join(f"{1e6 * (b - a) / count:.2f}" for a, b in zip(before, after, strict=True))
