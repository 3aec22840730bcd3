"""Admin list pages that never count a whole table: counts stop at ``COUNT_CAP`` rows."""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Paginator

#: Rows counted at most for a list page (beyond, the last page links stop there).
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Count at most ``COUNT_CAP`` rows (a ``LIMIT`` subquery), so large ledgers page quickly."""

    @cached_property
    def count(self) -> int:
        """Return the number of rows, up to ``COUNT_CAP``."""
        return self.object_list[:COUNT_CAP].count()
