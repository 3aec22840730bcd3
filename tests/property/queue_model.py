"""A plain Python model of one queue of RedisStreamsQueue: what the Lua scripts should do.

It follows the scripts' rules (``take``, ``start``, ``claim``, ``finish``, ``cancel``,
``promote``) on plain lists and dicts, so that a state machine can predict every answer and
every count of the real queue. Time is the model's ``clock``: the seconds the test moved every
due time back by (see ``test_queue_machine.advance``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from queue_app.queue import JobStatus

#: A delivery: (entry sequence number, attempt), the model's ``<entry>/<attempts>`` token.
Token = tuple[int, int]


@dataclass(eq=False)
class Entry:
    """One stream entry: unread while ``owner`` is None, else in the owner's pending list."""

    seq: int
    job_id: str
    level: int
    owner: str | None = None


@dataclass
class ModelJob:
    """What the status hash and the delayed set hold about one job."""

    priority: int
    max_attempts: int
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    entry: Entry | None = None
    token: Token | None = None
    #: Order in the delayed set while the job waits there: (due time, call number).
    due: tuple[float, int] | None = None


@dataclass
class QueueModel:
    """The jobs, streams and consumers of one queue."""

    jobs: dict[str, ModelJob] = field(default_factory=dict)
    streams: dict[int, list[Entry]] = field(default_factory=dict)
    #: Entries a consumer claimed and has not started, in the order it will start them.
    owned: dict[str, list[Entry]] = field(default_factory=dict)
    #: Deliveries each consumer started and has not finished (its ``running``).
    running: dict[str, dict[str, Token]] = field(default_factory=dict)
    clock: float = 0.0
    calls: int = 0
    seq: int = 0

    # -- what the scripts do ------------------------------------------------------------------

    def enqueue(self, job_id: str, priority: int, delay: float, max_attempts: int) -> None:
        """Add a job: delayed by ``delay`` seconds, or at the end of its priority's stream."""
        job = ModelJob(priority, max_attempts)
        self.jobs[job_id] = job
        if delay > 0:
            self._delay(job, delay)
        else:
            self._enter_stream(job_id, job)

    def dequeue(self, consumer: str) -> str | None:
        """Start the next job for ``consumer``: a claimed entry first, else promote and read."""
        owned = self.owned.setdefault(consumer, [])
        if owned and (started := self._deliver(owned.pop(0), consumer)):
            return started
        self.promote()
        for level in sorted(self.streams, reverse=True):
            unread = [e for e in self.streams[level] if e.owner is None]
            if unread:
                unread[0].owner = consumer
                if started := self._deliver(unread[0], consumer):
                    return started
        return None

    def promote(self) -> None:
        """Move every due delayed job into its stream, earliest due first."""
        due = [(job.due, job_id) for job_id, job in self.jobs.items() if job.due is not None]
        for when, job_id in sorted(due):
            if when[0] < self.clock:
                job = self.jobs[job_id]
                job.due = None
                job.status = JobStatus.PENDING
                self._enter_stream(job_id, job)

    def claim(self, consumer: str) -> int:
        """Take over every delivery in a pending list (idle 0 ms); return how many to start."""
        claimed: list[Entry] = []
        for level in sorted(self.streams, reverse=True):
            for entry in [e for e in self.streams[level] if e.owner is not None]:
                entry.owner = consumer
                job = self.jobs[entry.job_id]
                if job.entry is not entry:
                    self._drop(entry)
                    continue
                if job.status is JobStatus.PROCESSING:
                    job.status, job.token = JobStatus.PENDING, None
                claimed.append(entry)
        owned = self.owned.setdefault(consumer, []) + claimed
        self.owned[consumer] = sorted(owned, key=lambda e: -e.level)
        return len(claimed)

    def finish(self, consumer: str, job_id: str, outcome: str, delay: float = 0) -> bool:
        """Write ``outcome`` under the consumer's token; False when fenced or not running."""
        token = self.running.setdefault(consumer, {}).pop(job_id, None)
        job = self.jobs[job_id]
        if token is None or job.token != token:
            return False
        assert job.entry is not None
        self._drop(job.entry)
        job.entry, job.token = None, None
        if outcome == "retry":
            job.status = JobStatus.RETRYING
            self._delay(job, delay)
        elif outcome == "requeue":
            job.status = JobStatus.PENDING
            self._enter_stream(job_id, job)
        else:
            job.status = JobStatus(outcome)
        return True

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not finished; False when it has."""
        job = self.jobs[job_id]
        if job.status.is_terminal:
            return False
        if job.entry is not None:
            self._drop(job.entry)
        job.status, job.entry, job.token, job.due = JobStatus.CANCELLED, None, None, None
        return True

    # -- what the stats should say ------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Return the expected ``get_queue_stats()``."""
        entries = [e for stream in self.streams.values() for e in stream]
        counts = Counter(job.status for job in self.jobs.values())
        expected = {
            "stream_length": len(entries),
            "pending_in_group": sum(e.owner is not None for e in entries),
            "delayed": sum(job.due is not None for job in self.jobs.values()),
            "dead_letters": counts[JobStatus.FAILED],
        }
        expected.update({status.value: counts[status] for status in JobStatus})
        return expected

    # -- helpers of the scripts (lib.lua) -----------------------------------------------------

    def _deliver(self, entry: Entry, consumer: str) -> str | None:
        job = self.jobs[entry.job_id]
        if job.status is JobStatus.PROCESSING and job.entry is entry:
            return None  # running under another consumer since a takeover
        if job.status is not JobStatus.PENDING or job.entry is not entry:
            self._drop(entry)
            return None
        if job.attempts >= job.max_attempts:
            self._drop(entry)
            job.status, job.entry = JobStatus.FAILED, None
            return None
        job.attempts += 1
        job.status = JobStatus.PROCESSING
        job.token = (entry.seq, job.attempts)
        self.running.setdefault(consumer, {})[entry.job_id] = job.token
        return entry.job_id

    def _enter_stream(self, job_id: str, job: ModelJob) -> None:
        self.seq += 1
        job.entry = Entry(self.seq, job_id, job.priority)
        self.streams.setdefault(job.priority, []).append(job.entry)

    def _drop(self, entry: Entry) -> None:
        stream = self.streams.get(entry.level, [])
        if entry in stream:
            stream.remove(entry)

    def _delay(self, job: ModelJob, delay: float) -> None:
        self.calls += 1
        job.due = (self.clock + delay, self.calls)
