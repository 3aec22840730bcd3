"""Admin pages render and their actions change the queue (Django test client, real Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from queue_app.models import CircuitBreakerState, JobRecord, WebhookEndpoint
from queue_app.queue import Job, create_redis_queue, get_queue_config
from queue_app.services import jobs, scope
from tests.api_support import make_user
from tests.queue_ops import drain_ledger, process_jobs

pytestmark = pytest.mark.django_db

SECRET = "whsec-admin-0123456789"


@pytest.fixture
def staff(redis_url: str) -> Client:
    """Return a client logged in as a superuser, with an empty private Redis."""
    user = make_user("root", staff=True)
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def enqueue(count: int = 1, **job: Any) -> list[str]:
    ids = []
    for n in range(count):
        created, _ = jobs.enqueue_job(
            scope.ADMIN,
            jobs.build_job(
                scope.ADMIN, "debate", {"question": f"Q{n}?"}, priority=0, max_attempts=1
            ),
            **job,
        )
        ids.append(created.id)
    return ids


def redis_job(job_id: str) -> Job | None:
    async def read() -> Job | None:
        queue = await create_redis_queue(config=get_queue_config())
        try:
            return await queue.get_status(job_id)
        finally:
            await queue.close()

    return asyncio.run(read())


def act(client: Client, model: str, action: str, *pks: Any) -> Any:
    url = reverse(f"admin:queue_app_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": pks}, follow=True)


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_admin_index_links_the_dashboard(staff: Client) -> None:
    page = staff.get("/admin/").content.decode()
    assert 'href="/admin/queue/dashboard/"' in page and "Queue dashboard" in page


def test_admin_job_list_filters_and_searches(staff: Client) -> None:
    failed = enqueue()[0]
    process_jobs("failed")
    waiting = enqueue(queue="urgent")[0]
    assert drain_ledger() == 3
    url = reverse("admin:queue_app_jobrecord_changelist")
    page = staff.get(url).content.decode()
    assert failed in page and waiting in page
    only_failed = staff.get(url, {"status__exact": "failed"}).content.decode()
    assert failed in only_failed and waiting not in only_failed
    by_queue = staff.get(url, {"queue": "urgent"}).content.decode()
    assert waiting in by_queue and failed not in by_queue
    by_type = staff.get(url, {"job_type": "debate"}).content.decode()
    assert failed in by_type and waiting in by_type
    found = staff.get(url, {"q": waiting}).content.decode()
    assert waiting in found and failed not in found


def test_admin_job_detail_shows_payload_result_error_and_trace(staff: Client) -> None:
    job_id = enqueue()[0]
    process_jobs("failed")
    drain_ledger()
    record = JobRecord.objects.get(job_id=job_id)
    JobRecord.objects.filter(pk=record.pk).update(trace_id="0af7651916cd43dd8448eb211c80319c")
    page = staff.get(reverse("admin:queue_app_jobrecord_change", args=[record.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Q0?" in text and "boom: the agent crashed" in text
    assert "0af7651916cd43dd8448eb211c80319c" in text
    assert 'name="_save"' not in text  # read-only


def test_admin_retry_action_runs_failed_job_again(staff: Client) -> None:
    job_id = enqueue()[0]
    process_jobs("failed")
    drain_ledger()
    record = JobRecord.objects.get(job_id=job_id)
    response = act(staff, "jobrecord", "retry_jobs", record.pk)
    assert "Retried 1 job(s)." in messages_of(response)
    job = redis_job(job_id)
    assert job is not None and job.status.value == "pending" and job.attempts == 0
    record.refresh_from_db()
    assert (record.status, record.manual_retries) == ("pending", 1)
    assert record.last_retried_at is not None
    assert LogEntry.objects.filter(object_id=str(record.pk), change_message="Retried.").exists()
    assert process_jobs("completed") == [job_id]


def test_admin_retry_action_refuses_unfinished_jobs(staff: Client) -> None:
    enqueue()
    drain_ledger()
    response = act(staff, "jobrecord", "retry_jobs", JobRecord.objects.get().pk)
    assert any("only failed or cancelled" in m for m in messages_of(response))
    assert JobRecord.objects.get().manual_retries == 0


def test_admin_retry_of_job_redis_forgot_enqueues_a_copy(staff: Client) -> None:
    record = JobRecord.objects.create(
        job_id="gone-1",
        queue="debates",
        job_type="debate",
        status="failed",
        payload={"question": "Old?"},
        max_attempts=2,
    )
    act(staff, "jobrecord", "retry_jobs", record.pk)
    [copy_id] = process_jobs("completed")
    copy = redis_job(copy_id)
    assert copy is not None and copy.payload == {"question": "Old?"}
    assert copy.metadata["retry_of"] == "gone-1" and copy.job_type == "debate"
    assert JobRecord.objects.get(job_id="gone-1").manual_retries == 1
    assert LogEntry.objects.filter(change_message=f"Retried as new job {copy_id}.").exists()


def test_admin_cancel_action(staff: Client) -> None:
    job_id = enqueue()[0]
    drain_ledger()
    record = JobRecord.objects.get()
    response = act(staff, "jobrecord", "cancel_jobs", record.pk)
    assert "Cancelled 1 job(s)." in messages_of(response)
    job = redis_job(job_id)
    assert job is not None and job.status.value == "cancelled"
    assert JobRecord.objects.get().status == "cancelled"
    again = act(staff, "jobrecord", "cancel_jobs", record.pk)
    assert any("only unfinished" in m for m in messages_of(again))


def test_admin_failures_view_lists_failures_and_dead_letters(staff: Client) -> None:
    failed = enqueue()[0]
    process_jobs("failed")
    done = enqueue()[0]
    process_jobs("completed")
    drain_ledger()
    page = staff.get(reverse("admin:queue_app_jobfailure_changelist")).content.decode()
    assert "Dead letters in Redis now" in page and f'data-job-id="{failed}"' in page
    assert failed in page and done not in page and "boom: the agent crashed" in page

    retry = reverse("admin:queue_app_retry_dead_letter", args=[failed])
    response = staff.post(retry, follow=True)
    assert f"Retried {failed}." in messages_of(response)
    assert "No dead letters." in response.content.decode()
    job = redis_job(failed)
    assert job is not None and job.status.value == "pending"
    assert staff.get(retry).status_code == 405


def test_admin_endpoint_secret_is_write_only(staff: Client) -> None:
    add = reverse("admin:queue_app_webhookendpoint_add")
    form = staff.get(add).content.decode()
    assert 'type="password" name="new_secret"' in form
    data: dict[str, Any] = {
        "url": "https://hooks.example.com/in",
        "event_types": ["job.failed", "job.completed"],
        "is_active": "on",
        "organization": "acme",
        "circuit-TOTAL_FORMS": "0",
        "circuit-INITIAL_FORMS": "0",
    }
    missing = staff.post(add, data)
    assert "A new endpoint needs a signing secret." in missing.content.decode()
    assert staff.post(add, {**data, "new_secret": SECRET}).status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == SECRET and endpoint.circuit.state == "closed"

    change = reverse("admin:queue_app_webhookendpoint_change", args=[endpoint.pk])
    changelist = reverse("admin:queue_app_webhookendpoint_changelist")
    assert SECRET not in staff.get(change).content.decode()
    assert SECRET not in staff.get(changelist).content.decode()
    data |= {"circuit-TOTAL_FORMS": "1", "circuit-INITIAL_FORMS": "1"}
    data |= {"circuit-0-id": endpoint.circuit.pk, "circuit-0-endpoint": endpoint.pk}
    assert staff.post(change, {**data, "new_secret": ""}).status_code == 302
    assert WebhookEndpoint.objects.get().secret == SECRET
    assert staff.post(change, {**data, "new_secret": "rotated-secret-0123456"}).status_code == 302
    assert WebhookEndpoint.objects.get().secret == "rotated-secret-0123456"


def test_admin_reset_circuit_action(staff: Client) -> None:
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/", secret=SECRET)
    CircuitBreakerState.objects.filter(endpoint=endpoint).update(state="open", failure_count=5)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=5)
    changelist = staff.get(reverse("admin:queue_app_webhookendpoint_changelist"))
    assert "Open" in changelist.content.decode()
    response = act(staff, "webhookendpoint", "reset_circuits", endpoint.pk)
    assert "Reset 1 circuit(s)." in messages_of(response)
    endpoint.refresh_from_db()
    assert endpoint.circuit.state == "closed" and endpoint.circuit.failure_count == 0
    assert endpoint.consecutive_failures == 0


def test_admin_deliveries_are_read_only(staff: Client) -> None:
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/", secret=SECRET)
    delivery = endpoint.deliveries.create(
        event="job.failed", job_id="j-1", status_code=503, error="Service Unavailable"
    )
    page = staff.get(reverse("admin:queue_app_webhookdelivery_changelist")).content.decode()
    assert "j-1" in page and "503" in page and SECRET not in page
    assert staff.get(reverse("admin:queue_app_webhookdelivery_add")).status_code == 403
    detail = staff.get(reverse("admin:queue_app_webhookdelivery_change", args=[delivery.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/queue_app/jobrecord/",
        "/admin/queue_app/jobfailure/",
        "/admin/queue_app/webhookendpoint/",
        "/admin/queue_app/webhookdelivery/",
        "/admin/queue/dashboard/",
    ],
)
def test_admin_pages_need_staff(redis_url: str, url: str) -> None:
    client = Client()
    assert client.get(url)["Location"].startswith("/admin/login/")
    client.force_login(make_user("visitor"))
    assert client.get(url)["Location"].startswith("/admin/login/")
