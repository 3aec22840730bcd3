"""The debate worker kind: ``DebateWorker``, its executor, agents and consensus rules."""

from __future__ import annotations

from .executor import (
    DebateExecutor,
    DefaultDebateExecutor,
    create_default_executor,
    load_executor,
)
from .worker import DebateWorker

__all__ = [
    "DebateExecutor",
    "DebateWorker",
    "DefaultDebateExecutor",
    "create_default_executor",
    "load_executor",
]
