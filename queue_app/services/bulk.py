"""Bulk enqueue: the jobs of one request enqueued together, all of them or none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from queue_app.observability.refusals import counting_refusals
from queue_app.queue import Job, QueueError
from queue_app.services.bridge import get_bridge
from queue_app.services.jobs import JOB_QUEUES


class BulkConflict(QueueError):
    """The jobs of one bulk request cannot be enqueued together."""


class BulkIdsTaken(BulkConflict):
    """Jobs of a bulk request have ids that other jobs took (after the request was checked)."""

    def __init__(self, taken: dict[int, str]) -> None:
        super().__init__(f"job ids taken: {', '.join(taken.values())}; no job was added")
        #: Index in the request -> id of each job whose id was taken.
        self.taken = taken


class BulkEntry(NamedTuple):
    """One job of a bulk request with its options."""

    job: Job
    #: The queue the caller named, or None for the job type's own queue.
    queue: str | None
    delay_seconds: float


def enqueue_together(entries: Sequence[BulkEntry]) -> list[Job]:
    """Enqueue the jobs of one request in one atomic script call; return them.

    Every job goes to one queue (one script, one Redis Cluster slot), so either all are added
    or none: none when they would take the queue past its depth limit, and none when an id
    (a gauntlet id) was taken since the request was checked.

    Raises:
        BulkConflict: the jobs go to more than one queue, or two of them share an id.
        BulkIdsTaken: ids of the jobs are known already.
        UndeclaredQueue: the queue is not declared.
        QueueFull: the queue is at its depth limit (counted on ``/metrics``).
    """
    clients = get_bridge()
    default = clients.config.default_queue
    queues = {entry.queue or JOB_QUEUES.get(entry.job.job_type) or default for entry in entries}
    if len(queues) > 1:
        raise BulkConflict(
            f"the jobs of one bulk request go to one queue, not to {', '.join(sorted(queues))}"
        )
    jobs = [entry.job for entry in entries]
    if len({job.id for job in jobs}) < len(jobs):
        raise BulkConflict("two jobs of the request have one id (gauntlet_id)")
    delays = [entry.delay_seconds for entry in entries]
    with counting_refusals():
        added = clients.enqueuer.enqueue_together(jobs, queues.pop(), delays)
    taken = {
        index: job.id for index, (job, new) in enumerate(zip(jobs, added, strict=True)) if not new
    }
    if taken:  # a gauntlet id taken between the check and the enqueue: the script added none
        raise BulkIdsTaken(taken)
    return jobs
