"""The queue library's objects for sync Django code: one Redis client on one event loop thread.

Django views and the admin are sync; the library is async and its Redis connections belong to
the event loop that opened them. So each process keeps one loop in a daemon thread, with one
client (and its connection pool) on it, and sync code hands coroutines to that loop. Enqueues,
the hot path of views and ``task.enqueue()``, skip that hop: ``SyncEnqueuer`` runs the same
enqueue step on a sync client from the calling thread. This is the only place that builds the
web side's queue, enqueuer, tracker and worker registry.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import socket
import threading
from collections.abc import Coroutine
from typing import Any

from queue_app.queue import (
    JobStatusTracker,
    QueueConfig,
    QueueConnectionError,
    RedisStreamsQueue,
    create_redis_queue,
    get_queue_config,
)
from queue_app.queue.redis import LedgerReader, SyncEnqueuer, WorkerRegistry

#: Longest wait for one Redis call from a request before answering 503.
CALL_TIMEOUT_SECONDS = 10.0


class LibraryBridge:
    """Queue, tracker, registry and ledger reader of this process, served by one loop thread."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="queue-clients", daemon=True
        )
        self._thread.start()
        try:
            self.queue: RedisStreamsQueue = self.call(
                create_redis_queue(config=config, consumer_name=f"web-{socket.gethostname()}")
            )
        except BaseException:
            self._stop_loop()
            raise
        self.tracker: JobStatusTracker = self.queue.tracker
        #: Enqueues on the calling thread (no hop to the loop thread), same queue and config.
        self.enqueuer = SyncEnqueuer.beside(self.queue)
        self.registry = WorkerRegistry(self.queue.redis, config)
        self.ledger = LedgerReader(self.queue.redis, "web", config)

    def call[T](self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop thread and return its result.

        Raises:
            QueueConnectionError: Redis is unreachable or did not answer in time.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(CALL_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise QueueConnectionError("Redis did not answer in time") from None

    def close(self) -> None:
        """Close the Redis client and stop the loop thread."""
        try:
            self.enqueuer.close()
            self.call(self.queue.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT_SECONDS)
        self._loop.close()


_lock = threading.Lock()
_current: LibraryBridge | None = None


def get_bridge() -> LibraryBridge:
    """Return this process's clients for the installed queue config, built on first use.

    They are built again after a fork (gunicorn workers) and whenever the config object is
    replaced (``apps.ready()`` or a settings override in tests); the replaced ones are closed.
    """
    global _current
    config = get_queue_config()
    stale = None
    with _lock:
        current = _current
        if current is not None and current.config is config and current.pid == os.getpid():
            return current
        if current is not None and current.pid == os.getpid():
            stale = current
        _current = LibraryBridge(config)
        fresh = _current
    if stale is not None:
        stale.close()
    return fresh


@atexit.register
def _close_at_exit() -> None:
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None and current.pid == os.getpid():
        current.close()
