"""``DjangoRouteStore``: the routing worker's delivery log over the ORM, and mail through Django.

Email goes through Django's email backend (``EMAIL_BACKEND``, SMTP with the ``EMAIL_*``
settings by default), in a thread so that the worker's loop never waits on SMTP.
"""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from queue_app.models import RouteDelivery, from_timestamp
from queue_app.stores.db_thread import in_db_thread
from workers.routing import EmailMessage, RouteAttempt


def was_delivered(job_id: str) -> bool:
    """Tell whether routing job ``job_id`` has a delivered attempt."""
    return RouteDelivery.objects.filter(job_id=job_id, outcome="delivered").exists()


def record_delivery(attempt: RouteAttempt) -> None:
    """Insert the attempt's row."""
    RouteDelivery.objects.create(
        job_id=attempt.job_id,
        debate_id=attempt.debate_id,
        platform=attempt.platform,
        target=attempt.target[:320],
        attempt=attempt.attempt,
        outcome=attempt.outcome,
        status_code=attempt.status_code,
        duration_seconds=attempt.duration_seconds,
        error=attempt.error,
        response_excerpt=attempt.response_excerpt,
        owner=attempt.owner,
        organization=attempt.organization,
        delivered_at=from_timestamp(attempt.at),
    )


def send_email(message: EmailMessage) -> None:
    """Send ``message`` with Django's email backend (errors propagate)."""
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
    )
    email.attach_alternative(message.html, "text/html")
    email.send(fail_silently=False)


class DjangoRouteStore:
    """The ``RouteStore`` of the routing worker over ``RouteDelivery`` and Django's mail."""

    async def delivered(self, job_id: str) -> bool:
        """Tell whether the routing job already delivered."""
        return await in_db_thread(was_delivered)(job_id)

    async def record_delivery(self, attempt: RouteAttempt) -> None:
        """Record the attempt."""
        await in_db_thread(record_delivery)(attempt)

    async def send_email(self, message: EmailMessage) -> None:
        """Send the email in a thread of its own."""
        await asyncio.to_thread(send_email, message)
