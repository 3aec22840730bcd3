"""The gauntlet kind: ``GauntletWorker`` stress-tests content with adversarial probes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .jobs import (
        GAUNTLET_QUEUE,
        JOB_TYPE_GAUNTLET,
        enqueue_gauntlet_job,
        gauntlet_job,
        recover_interrupted_gauntlets,
    )
    from .probes import INPUT_TYPES, PROBES, PROFILES
    from .worker import GauntletWorker

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".jobs": (
            "GAUNTLET_QUEUE",
            "JOB_TYPE_GAUNTLET",
            "enqueue_gauntlet_job",
            "gauntlet_job",
            "recover_interrupted_gauntlets",
        ),
        ".probes": ("INPUT_TYPES", "PROBES", "PROFILES"),
        ".worker": ("GauntletWorker",),
    },
)

__all__ = [
    "GAUNTLET_QUEUE",
    "INPUT_TYPES",
    "JOB_TYPE_GAUNTLET",
    "PROBES",
    "PROFILES",
    "GauntletWorker",
    "enqueue_gauntlet_job",
    "gauntlet_job",
    "recover_interrupted_gauntlets",
]
