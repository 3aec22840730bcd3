"""RecordStore: small JSON records kept beside the jobs, for state that needs no database.

The webhook worker keeps the endpoints that library users register, their circuit breakers,
health and delivery logs in them when it runs without Django. Each method touches one record
atomically; ``update`` applies a pure change as one step even with several writers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

#: A JSON object as a record holds it.
Record = dict[str, Any]
#: A pure change of a record (None when it does not exist yet).
RecordChange = Callable[[Record | None], Record]


class RecordStore(ABC):
    """JSON records and capped logs under names such as ``webhook:endpoint:<id>``."""

    @abstractmethod
    async def get(self, name: str) -> Record | None:
        """Return the record ``name``, or None when there is none."""

    @abstractmethod
    async def put(self, name: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` as ``name``, replacing what was there."""

    @abstractmethod
    async def update(self, name: str, change: RecordChange) -> tuple[Record | None, Record]:
        """Apply ``change`` to the record as one atomic step; return it before and after."""

    @abstractmethod
    async def append(self, name: str, entry: Mapping[str, Any], keep: int) -> None:
        """Add ``entry`` to the log ``name``, keeping only its newest ``keep`` entries."""
