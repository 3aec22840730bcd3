"""Admin list pages of the ledger and the delivery log: indexed orderings, capped counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from queue_app.models import JobRecord, WebhookDelivery, WebhookEndpoint
from tests.api_support import make_user

pytestmark = pytest.mark.django_db

#: Admin list pages and the table each one lists.
LISTS = [
    ("/admin/queue_app/jobrecord/", "queue_app_jobrecord"),
    ("/admin/queue_app/jobfailure/", "queue_app_jobrecord"),
    ("/admin/queue_app/webhookdelivery/", "queue_app_webhookdelivery"),
]


@pytest.fixture
def staff(redis_url: str) -> Client:
    """Return a client logged in as a superuser, with a few ledger rows and deliveries."""
    user = make_user("root", staff=True)
    user.is_superuser = True
    user.save()
    now = timezone.now()
    JobRecord.objects.bulk_create(
        JobRecord(
            job_id=f"job-{n}",
            queue="debates",
            status="failed" if n % 2 else "completed",
            created_at=now,
            completed_at=now,
        )
        for n in range(30)
    )
    endpoint = WebhookEndpoint.objects.create(url="https://example.com/hook", secret="s" * 32)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, event="job.completed", job_id=f"job-{n}")
        for n in range(30)
    )
    client = Client()
    client.force_login(user)
    return client


def _list_queries(client: Client, url: str, table: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries if f'FROM "{table}"' in q["sql"]]


@pytest.mark.parametrize(("url", "table"), LISTS)
def test_admin_lists_never_count_the_whole_table(staff: Client, url: str, table: str) -> None:
    counts = [sql for sql in _list_queries(staff, url, table) if "COUNT(" in sql.upper()]
    assert counts, "the page counts its rows"
    assert all("LIMIT 10000" in sql for sql in counts), counts


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plans")
@pytest.mark.parametrize(("url", "table"), LISTS)
def test_admin_lists_default_ordering_uses_an_index(staff: Client, url: str, table: str) -> None:
    [page] = [
        sql for sql in _list_queries(staff, url, table) if sql.startswith(f'SELECT "{table}"')
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {page}")
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan
