"""Side-by-side benchmark of this project's queue against huey, Dramatiq, Celery, RQ, arq, taskiq.

``bin/bench-peers`` (``make bench-peers``) installs the peers into ``.run/peers-venv`` and runs
``python -m peers`` from ``bench/``. Each ``*_app`` module defines one system's job and its
producer; ``shape`` is the work every job does; ``measure`` runs and times the processes;
``report`` prints the table. The method is in ``bench/README.md``.
"""
