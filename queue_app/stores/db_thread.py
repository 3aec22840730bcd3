"""Run ORM work from async worker code in asgiref's database thread, one unit of work a call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections


def in_db_thread[**P, R](function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run ``function`` in asgiref's database thread as Django runs a request there: stale or
    broken connections (after a database outage) are dropped before, and closed after."""

    def unit_of_work(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(unit_of_work)
