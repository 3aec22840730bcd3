"""Enqueues the queue refused for back-pressure, counted on the web's ``/metrics``.

| metric                                | labels | meaning                                     |
|---------------------------------------|--------|---------------------------------------------|
| `aragora_queue_enqueue_refused_total` | queue  | enqueues refused: queue at its depth limit  |

Only declared queues can be full, so the ``queue`` label stays bounded.
"""

from __future__ import annotations

from types import TracebackType

from prometheus_client import Counter

from queue_app.queue import QueueFull

ENQUEUE_REFUSED = Counter(
    "aragora_queue_enqueue_refused",
    "Enqueues refused because the queue held as many waiting jobs as its depth limit allows.",
    ["queue"],
)


class RefusalCounter:
    """Count a ``QueueFull`` raised inside the block, then let it propagate (``with`` block).

    A class, not a generator: it is entered around every enqueue (0.36 µs instead of 2.5 µs).
    """

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if isinstance(error, QueueFull):
            ENQUEUE_REFUSED.labels(queue=error.queue).inc()
        return False


_COUNTER = RefusalCounter()


def counting_refusals() -> RefusalCounter:
    """Return the block that counts a ``QueueFull`` raised inside it (it keeps no state)."""
    return _COUNTER
