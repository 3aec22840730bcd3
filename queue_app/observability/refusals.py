"""Enqueues the queue refused for back-pressure, counted on the web's ``/metrics``.

| metric                                | labels | meaning                                     |
|---------------------------------------|--------|---------------------------------------------|
| `aragora_queue_enqueue_refused_total` | queue  | enqueues refused: queue at its depth limit  |

Only declared queues can be full, so the ``queue`` label stays bounded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import Counter

from queue_app.queue import QueueFull

ENQUEUE_REFUSED = Counter(
    "aragora_queue_enqueue_refused",
    "Enqueues refused because the queue held as many waiting jobs as its depth limit allows.",
    ["queue"],
)


@contextlib.contextmanager
def counting_refusals() -> Iterator[None]:
    """Count a ``QueueFull`` raised inside the block, then let it propagate."""
    try:
        yield
    except QueueFull as error:
        ENQUEUE_REFUSED.labels(queue=error.queue).inc()
        raise
