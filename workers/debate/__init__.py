"""The debate worker kind: ``DebateWorker``, its executor, agents and consensus rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .executor import (
        DebateExecutor,
        DefaultDebateExecutor,
        create_default_executor,
        load_executor,
    )
    from .worker import DebateWorker

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".executor": (
            "DebateExecutor",
            "DefaultDebateExecutor",
            "create_default_executor",
            "load_executor",
        ),
        ".worker": ("DebateWorker",),
    },
)

__all__ = [
    "DebateExecutor",
    "DebateWorker",
    "DefaultDebateExecutor",
    "create_default_executor",
    "load_executor",
]
