"""Whose jobs a caller may see: staff every job, other users their organization's or their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queue_app.models import OrganizationMembership
from queue_app.queue import Job


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Whose jobs a caller may see: its user id, its organization, and whether it is staff."""

    user_id: str
    organization: str = ""
    is_staff: bool = False

    @classmethod
    def of(cls, user: Any) -> Scope:
        """Return the scope of an authenticated Django user."""
        try:
            membership = user.queue_membership
        except OrganizationMembership.DoesNotExist:
            membership = None
        return cls(
            user_id=str(user.pk),
            organization=membership.organization if membership else "",
            is_staff=bool(user.is_staff),
        )

    def allows(self, owner: str, organization: str) -> bool:
        """Tell whether something owned by ``owner`` in ``organization`` is visible."""
        if self.is_staff or owner == self.user_id:
            return True
        return bool(self.organization) and organization == self.organization

    def allows_job(self, job: Job) -> bool:
        """Tell whether ``job`` is visible (owner and organization come from its metadata)."""
        meta = job.metadata
        return self.allows(str(meta.get("owner") or ""), str(meta.get("organization") or ""))


#: Staff scope for the admin, whose pages are staff-only anyway.
ADMIN = Scope(user_id="", is_staff=True)
