"""The chaos run (``make chaos``): thousands of jobs through real workers while faults strike.

``python -m chaos`` starts a private redis-server (``appendonly yes``) and ``manage.py
queue_worker`` processes with ``chaos.settings``, enqueues ``chaos.tasks.chaos_job`` calls,
kills and restarts workers, freezes one past ``claim_idle_ms``, kills and restarts Redis, and
then checks that no job was lost (``chaos.verify``).
"""
