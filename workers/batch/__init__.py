"""The batch explainability kind: ``BatchExplainabilityWorker``, ``BatchJobProgress``,
``create_batch_job`` and the explain generators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .explainer import (
        DebateHistory,
        DebateNotReady,
        DefaultExplainGenerator,
        ExplainGenerator,
        load_explain_generator,
    )
    from .jobs import BATCH_JOB_TYPE, BATCH_QUEUE, MAX_BATCH_ITEMS, batch_job, create_batch_job
    from .progress import BatchJobProgress, load_batch_progress
    from .worker import BatchExplainabilityWorker, BatchFailed, BatchRejected

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".explainer": (
            "DebateHistory",
            "DebateNotReady",
            "DefaultExplainGenerator",
            "ExplainGenerator",
            "load_explain_generator",
        ),
        ".jobs": (
            "BATCH_JOB_TYPE",
            "BATCH_QUEUE",
            "MAX_BATCH_ITEMS",
            "batch_job",
            "create_batch_job",
        ),
        ".progress": ("BatchJobProgress", "load_batch_progress"),
        ".worker": ("BatchExplainabilityWorker", "BatchFailed", "BatchRejected"),
    },
)

__all__ = [
    "BATCH_JOB_TYPE",
    "BATCH_QUEUE",
    "MAX_BATCH_ITEMS",
    "BatchExplainabilityWorker",
    "BatchFailed",
    "BatchJobProgress",
    "BatchRejected",
    "DebateHistory",
    "DebateNotReady",
    "DefaultExplainGenerator",
    "ExplainGenerator",
    "batch_job",
    "create_batch_job",
    "load_batch_progress",
    "load_explain_generator",
]
