"""RedisRecordStore: the ``RecordStore`` of the queue, as JSON strings and capped lists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from redis.exceptions import WatchError

from ..records import Record, RecordChange, RecordStore
from .core import dumps
from .keys import Keys
from .outage import translate_errors


def _loads(raw: Any) -> Record | None:
    return None if raw is None else dict(json.loads(raw))


class RedisRecordStore(RecordStore):
    """Records as JSON strings (``P rec:<name>``), logs as lists trimmed at each append."""

    def __init__(self, redis_client: Any, keys: Keys) -> None:
        self._redis = redis_client
        self._keys = keys

    @translate_errors
    async def get(self, name: str) -> Record | None:
        """Return the record ``name``, or None."""
        return _loads(await self._redis.get(self._keys.record(name)))

    @translate_errors
    async def put(self, name: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` as ``name``."""
        await self._redis.set(self._keys.record(name), dumps(dict(record), "record"))

    @translate_errors
    async def update(self, name: str, change: RecordChange) -> tuple[Record | None, Record]:
        """Read, change and write the record under WATCH; start again if another writer won."""
        key = self._keys.record(name)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    before = _loads(await pipe.get(key))
                    after = change(None if before is None else dict(before))
                    pipe.multi()
                    pipe.set(key, dumps(after, "record"))
                    await pipe.execute()
                    return before, after
                except WatchError:
                    continue

    @translate_errors
    async def append(self, name: str, entry: Mapping[str, Any], keep: int) -> None:
        """Push ``entry`` to the head of the list and trim it to ``keep`` entries."""
        key = self._keys.record(name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, dumps(dict(entry), "log entry"))
            pipe.ltrim(key, 0, max(keep, 1) - 1)
            await pipe.execute()
