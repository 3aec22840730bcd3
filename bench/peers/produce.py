"""Enqueue benchmark jobs of one system and print the seconds it took as JSON.

``python -m peers.produce APP COUNT [--rate PER_SECOND | --bulk]``: ``APP`` is a module of this
package (``huey_app``...). Without ``--rate``, jobs are enqueued one by one as fast as the
system's enqueue call returns, with ``sent`` = 0. With ``--rate``, they are enqueued on a steady
schedule, each carrying ``sent`` = ``time.time()`` for the latency record. ``--bulk`` uses the
app's ``enqueue_many`` (this project's library only).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import time
from collections.abc import Callable
from typing import Any


def _paced(count: int, rate: float) -> list[float]:
    """Return the enqueue offsets in seconds: all 0 (no rate) or a steady schedule."""
    return [i / rate if rate else 0.0 for i in range(count)]


def enqueue_blocking(enqueue: Callable[[float], Any], offsets: list[float], stamp: bool) -> float:
    """Call a blocking enqueue at ``offsets``; return the seconds it took."""
    started = time.perf_counter()
    for offset in offsets:
        pause = started + offset - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        enqueue(time.time() if stamp else 0.0)
    return time.perf_counter() - started


async def enqueue_async(
    enqueue: Callable[[float], Any], offsets: list[float], stamp: bool
) -> float:
    """Await an asyncio enqueue at ``offsets``; return the seconds it took."""
    started = time.perf_counter()
    for offset in offsets:
        pause = started + offset - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        await enqueue(time.time() if stamp else 0.0)
    return time.perf_counter() - started


async def produce(app: Any, count: int, rate: float) -> float:
    """Enqueue ``count`` jobs with the app's producer; return the seconds it took."""
    offsets = _paced(count, rate)
    async with app.producer() as enqueue:
        if inspect.iscoroutinefunction(enqueue):
            return await enqueue_async(enqueue, offsets, stamp=rate > 0)
        # A thread without an event loop, as a blocking caller (a Django view...) has.
        return await asyncio.to_thread(enqueue_blocking, enqueue, offsets, rate > 0)


async def produce_bulk(app: Any, count: int) -> float:
    """Enqueue ``count`` jobs with one ``enqueue_many`` call; return the seconds it took."""
    started = time.perf_counter()
    await app.enqueue_many(count)
    return time.perf_counter() - started


def main() -> None:
    """Parse the arguments, enqueue, print ``{"seconds": ...}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app")
    parser.add_argument("count", type=int)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, default=0.0)
    mode.add_argument("--bulk", action="store_true")
    args = parser.parse_args()
    app = importlib.import_module(f"peers.{args.app}")
    if args.bulk:
        seconds = asyncio.run(produce_bulk(app, args.count))
    else:
        seconds = asyncio.run(produce(app, args.count, args.rate))
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
