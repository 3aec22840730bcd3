"""The rows of the table: each system's producer module, worker command and settings.

Peers run their own documented one-process worker with its default settings, except where a
flag is needed for one process (``--processes 1``, ``--workers 1``, ``--concurrency 1``) or to
turn off a log line per job (``-q``, ``--quiet``, ``--log-level WARNING``), which this project's
worker does not write either (it logs completions at DEBUG).
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT, PEER, FLOOR = "project", "peer", "floor"
#: Virtualenv of each ``System.venv``, relative to the project root (bin/bench-peers makes them).
VENVS = {
    PROJECT: ".venv",
    FLOOR: ".venv",
    PEER: ".run/peers-venv",
    "arq": ".run/peers-venv-arq",
}


@dataclass(frozen=True, slots=True)
class System:
    """One row: a queue system, how its jobs are enqueued and how its worker runs."""

    #: Key in the JSON results and in ``--only``.
    name: str
    #: Row label of the table.
    label: str
    #: ``PROJECT`` (this project's rows), ``PEER`` or ``FLOOR`` (the bound of the project's rows).
    kind: str
    #: Module of this package with ``producer()`` (and ``enqueue_many`` when ``bulk``).
    app: str
    #: Worker argv; ``{bin}`` is the virtualenv's bin folder, ``{url}`` the Redis URL.
    worker: tuple[str, ...]
    #: The worker's settings as the README states them.
    settings: str
    #: Distribution whose version the table reports (peers: the PyPI name).
    package: str = ""
    #: The row also measures ``enqueue_many`` and two worker processes.
    bulk: bool = False
    #: Key of ``VENVS`` whose Python runs the system's processes (default: that of ``kind``).
    venv: str = ""

    @property
    def venv_path(self) -> str:
        """Return the system's virtualenv folder, relative to the project root."""
        return VENVS[self.venv or self.kind]


LIBRARY_WORKER = ("{bin}/python", "-m", "peers.project_app")
FLOOR_WORKER = ("{bin}/python", "-m", "peers.floor_app", "--concurrency")

FLOORS = (
    System(
        "floor",
        "floor: bare redis-py asyncio Streams consumer, concurrency 3",
        FLOOR,
        "floor_app",
        (*FLOOR_WORKER, "3"),
        "XADD / XREADGROUP / batched XACK on redis.asyncio, nothing else (floor_app.py):"
        " the library row's bound",
        bulk=True,
    ),
    System(
        "floor-c100",
        "floor: bare redis-py asyncio Streams consumer, concurrency 100",
        FLOOR,
        "floor_app",
        (*FLOOR_WORKER, "100"),
        "the same at concurrency 100: the bound of the concurrency-100 row",
        bulk=True,
    ),
)
SYSTEMS = (
    System(
        "library",
        "this project, library worker",
        PROJECT,
        "project_app",
        LIBRARY_WORKER,
        "BaseWorker subclass, default concurrency (3), no middleware",
        bulk=True,
    ),
    System(
        "library-c100",
        "this project, library worker, concurrency 100 + middleware",
        PROJECT,
        "project_app",
        (*LIBRARY_WORKER, "--concurrency", "100", "--production"),
        "BaseWorker subclass, concurrency 100, tracing + logging + metrics middleware",
        bulk=True,
    ),
    System(
        "tasks",
        "this project, django.tasks @task",
        PROJECT,
        "project_tasks",
        ("{bin}/python", "manage.py", "queue_worker", "--queues", "tasks"),
        "manage.py queue_worker --queues tasks: the tasks kind's default concurrency (50),"
        " production middleware, ledger drained in the process; async @task; enqueued with"
        " task.enqueue()",
    ),
    System(
        "huey",
        "huey",
        PEER,
        "huey_app",
        ("{bin}/huey_consumer", "peers.huey_app.huey", "-q"),
        "huey_consumer: 1 worker thread (default -w 1 -k thread), RedisHuey (blocking pop); -q",
        "huey",
    ),
    System(
        "dramatiq",
        "Dramatiq",
        PEER,
        "dramatiq_app",
        ("{bin}/dramatiq", "peers.dramatiq_app", "--processes", "1", "--threads", "8"),
        "dramatiq --processes 1 --threads 8 (8 is the default thread count), RedisBroker",
        "dramatiq",
    ),
    System(
        "celery",
        "Celery",
        PEER,
        "celery_app",
        (
            "{bin}/celery",
            "-A",
            "peers.celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
        ),
        "celery worker --pool prefork (the default pool) --concurrency 1, Redis broker,"
        " no result backend, default prefetch (4)",
        "celery",
    ),
    System(
        "rq",
        "RQ",
        PEER,
        "rq_app",
        ("{bin}/rq", "worker", "--url", "{url}", "--quiet", "bench"),
        "rq worker (the default Worker: forks a work horse per job); --quiet",
        "rq",
    ),
    System(
        "arq",
        "arq",
        PEER,
        "arq_app",
        ("{bin}/arq", "peers.arq_app.WorkerSettings"),
        "arq worker, defaults: max_jobs 10, poll_delay 0.5 s (logs one INFO line per job:"
        " arq's CLI has no flag to turn it off)",
        "arq",
        venv="arq",
    ),
    System(
        "taskiq",
        "taskiq (taskiq-redis)",
        PEER,
        "taskiq_app",
        (
            "{bin}/taskiq",
            "worker",
            "peers.taskiq_app:broker",
            "--workers",
            "1",
            "--log-level",
            "WARNING",
        ),
        "taskiq worker --workers 1 (default 2), max_async_tasks 100 (default),"
        " taskiq-redis RedisStreamBroker; --log-level WARNING",
        "taskiq",
    ),
    *FLOORS,
)


#: The rows of ``--quick``: this project's own, the lightest peer and the floor of the library row.
QUICK = ("library", "library-c100", "tasks", "huey", "floor")
