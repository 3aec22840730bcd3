"""Count Redis round trips: each write of a command or a whole pipeline to a connection is one."""

from __future__ import annotations

import threading
from typing import Any

from redis.asyncio.connection import AbstractConnection


class RoundTrips:
    """Counts the packets redis-py's asyncio connections send, from any thread."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.count = 0

    def install(self, monkeypatch: Any) -> None:
        """Wrap ``send_packed_command`` (the real one still sends) for the test's duration."""
        real = AbstractConnection.send_packed_command
        counter = self

        async def counted(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            with counter._lock:
                counter.count += 1
            await real(self, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
