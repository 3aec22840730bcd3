"""Admin pages render and their actions change the queue (Django test client, real Redis)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from queue_app.models import (
    CircuitBreakerState,
    HealingRecord,
    JobRecord,
    RouteDelivery,
    SigningSecret,
    WebhookEndpoint,
)
from queue_app.queue import Job, create_redis_queue, get_queue_config
from queue_app.queue.redis import WorkerRegistry
from queue_app.services import jobs, scope
from tests.api_support import make_user
from tests.queue_ops import drain_ledger, process_jobs, start_jobs

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

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


def list_row(page: str, job_id: str) -> str:
    """Return the change-list row of ``job_id`` (found by its short-id link)."""
    for row in page.split("<tr")[1:]:
        if f">{job_id[:8]}</a>" in row:
            return row.split("</tr>")[0]
    raise AssertionError(f"no row for {job_id}")


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_admin_index_links_the_dashboard(staff: Client) -> None:
    page = staff.get("/admin/").content.decode()
    assert 'href="/admin/queue/dashboard/"' in page and "Queue dashboard" in page


def test_admin_job_list_filters_and_searches(staff: Client, settings: SettingsWrapper) -> None:
    settings.ARAGORA_QUEUES = ["urgent"]
    failed = enqueue()[0]
    process_jobs("failed")
    waiting = enqueue(queue="urgent")[0]
    assert drain_ledger() == 3
    url = reverse("admin:queue_app_jobrecord_changelist")
    page = staff.get(url).content.decode()
    assert f">{failed[:8]}</a>" in page and f">{waiting[:8]}</a>" in page
    only_failed = staff.get(url, {"status": "failed"}).content.decode()
    assert failed[:8] in only_failed and waiting[:8] not in only_failed
    by_queue = staff.get(url, {"queue": "urgent"}).content.decode()
    assert waiting[:8] in by_queue and failed[:8] not in by_queue
    by_type = staff.get(url, {"job_type": "debate"}).content.decode()
    assert failed[:8] in by_type and waiting[:8] in by_type
    for term in (waiting, waiting[:8], waiting[:4]):
        found = staff.get(url, {"q": term}).content.decode()
        assert waiting[:8] in found and failed[:8] not in found, term
    assert "0 job records" in staff.get(url, {"q": waiting[:3]}).content.decode()


def test_admin_job_list_shows_status_badges_durations_and_delayed_jobs(staff: Client) -> None:
    done = enqueue()[0]
    process_jobs("completed")
    delayed = enqueue(delay_seconds=300)[0]
    now = enqueue()[0]
    drain_ledger()
    url = reverse("admin:queue_app_jobrecord_changelist")
    page = staff.get(url).content.decode()
    rows = {job_id[:8]: list_row(page, job_id) for job_id in (done, delayed, now)}
    assert 'job-status-completed">completed</span>' in rows[done[:8]]
    assert re.search(r'field-ran">\d+ ms<', rows[done[:8]])
    assert 'job-status-delayed">delayed</span> runs at 20' in rows[delayed[:8]]
    assert 'job-status-pending">pending</span>' in rows[now[:8]]
    assert 'field-ran">-<' in rows[now[:8]]
    only_delayed = staff.get(url, {"status": "delayed"}).content.decode()
    assert delayed[:8] in only_delayed and now[:8] not in only_delayed
    assert done[:8] not in only_delayed


def test_admin_job_detail_shows_times_durations_error_and_trace(
    staff: Client, settings: SettingsWrapper
) -> None:
    job_id = enqueue()[0]
    process_jobs("failed")
    drain_ledger()
    trace = "0af7651916cd43dd8448eb211c80319c"
    JobRecord.objects.filter(job_id=job_id).update(
        trace_id=trace, error="Traceback (most recent call last):\n  File x\nboom"
    )
    record = JobRecord.objects.get(job_id=job_id)
    url = reverse("admin:queue_app_jobrecord_change", args=[record.pk])
    text = staff.get(url).content.decode()
    assert "Q0?" in text and job_id in text and trace in text
    assert '<pre class="job-block job-error">Traceback (most recent call last):\n  File x' in text
    started = record.started_at.strftime("%Y-%m-%d %H:%M:%S")
    assert f"{started} UTC" in text  # to the second
    for label in ("Waited", "Ran", "Total"):
        assert f"<label>{label}:</label>" in text
    assert 'name="_save"' not in text and "/delete/" not in text  # read-only, no Delete
    assert 'id="job-retry"' in text and 'id="job-cancel"' not in text
    settings.ARAGORA_TRACE_URL = "http://jaeger.local:16686/trace/{trace_id}"
    linked = staff.get(url).content.decode()
    assert f'<a href="http://jaeger.local:16686/trace/{trace}">{trace}</a>' in linked
    assert staff.get(url.replace("/change/", "/delete/")).status_code == 403


def test_admin_job_detail_shows_when_a_delayed_job_runs(staff: Client) -> None:
    job_id = enqueue(delay_seconds=120)[0]
    drain_ledger()
    record = JobRecord.objects.get(job_id=job_id)
    text = staff.get(reverse("admin:queue_app_jobrecord_change", args=[record.pk])).content.decode()
    match = re.search(r"delayed</span> runs at (\S+ \S+) UTC", text)
    assert match is not None
    due = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((due - record.created_at).total_seconds() - 120) < 2
    assert 'id="job-cancel"' in text and 'id="job-retry"' not in text


def test_admin_job_detail_buttons_retry_and_cancel(staff: Client) -> None:
    failed = enqueue()[0]
    process_jobs("failed")
    waiting = enqueue()[0]
    drain_ledger()
    failed_row = JobRecord.objects.get(job_id=failed)
    response = staff.post(reverse("admin:queue_app_jobrecord_retry", args=[failed_row.pk]))
    detail = reverse("admin:queue_app_jobrecord_change", args=[failed_row.pk])
    assert response.status_code == 302 and response["Location"] == detail
    job = redis_job(failed)
    assert job is not None and job.status.value == "pending" and job.attempts == 0
    assert JobRecord.objects.get(pk=failed_row.pk).manual_retries == 1

    waiting_row = JobRecord.objects.get(job_id=waiting)
    cancel = reverse("admin:queue_app_jobrecord_cancel", args=[waiting_row.pk])
    assert "Cancelled 1 job(s)." in messages_of(staff.post(cancel, follow=True))
    job = redis_job(waiting)
    assert job is not None and job.status.value == "cancelled"
    assert any("only unfinished" in m for m in messages_of(staff.post(cancel, follow=True)))
    assert staff.get(cancel).status_code == 405


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


def test_admin_failures_list_each_dead_letter_once(staff: Client) -> None:
    failed = enqueue()[0]
    process_jobs("failed")
    done = enqueue()[0]
    process_jobs("completed")
    drain_ledger()
    unlisted = enqueue()[0]  # dead-lettered, its event not yet in the ledger
    process_jobs("failed")
    page = staff.get(reverse("admin:queue_app_jobfailure_changelist")).content.decode()
    assert "Dead letters in Redis now" in page and '<strong id="dead-letter-count">2' in page
    record = JobRecord.objects.get(job_id=failed)
    detail = reverse("admin:queue_app_jobfailure_change", args=[record.pk])
    assert page.count(f">{failed[:8]}</a>") == 1 and f'href="{detail}"' in page
    assert f'data-job-id="{unlisted}"' in page and f'data-job-id="{failed}"' not in page
    assert done[:8] not in page and "boom: the agent crashed" in page

    retry = reverse("admin:queue_app_retry_dead_letter", args=[unlisted])
    response = staff.post(retry, follow=True)
    assert f"Retried {unlisted}." in messages_of(response)
    job = redis_job(unlisted)
    assert job is not None and job.status.value == "pending"
    assert staff.get(retry).status_code == 405


def test_admin_retry_all_dead_letters_after_confirmation(staff: Client) -> None:
    ids = enqueue(3)
    process_jobs("failed")
    url = reverse("admin:queue_app_dead_letters_all", args=["retry"])
    confirm = staff.get(url).content.decode()
    assert "These 3 job(s) will be run again" in confirm and all(i in confirm for i in ids)
    assert all(redis_job(i).status.value == "failed" for i in ids)  # type: ignore[union-attr]
    response = staff.post(url, follow=True)
    assert "Retried 3 dead letter(s)." in messages_of(response)
    assert all(redis_job(i).status.value == "pending" for i in ids)  # type: ignore[union-attr]
    assert "No dead letters." in response.content.decode()


def test_admin_discard_all_dead_letters_keeps_jobs_failed(staff: Client, redis_url: str) -> None:
    ids = enqueue(2)
    process_jobs("failed")
    url = reverse("admin:queue_app_dead_letters_all", args=["discard"])
    assert "no longer listed as dead letters" in staff.get(url).content.decode()
    response = staff.post(url, follow=True)
    assert "Discarded 2 dead letter(s)." in messages_of(response)
    with redis.Redis.from_url(redis_url) as client:
        assert client.zcard(f"{get_queue_config().key_prefix}debates:dead") == 0
    assert all(redis_job(i).status.value == "failed" for i in ids)  # type: ignore[union-attr]
    assert staff.get(reverse("admin:queue_app_dead_letters_all", args=["nope"])).status_code == 404


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
    assert "A signing secret is required." in missing.content.decode()
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
    stored = WebhookEndpoint.objects.values_list("secret_encrypted", flat=True).get()
    assert "rotated-secret" not in stored  # encrypted at rest


def test_admin_sends_test_events_and_redelivers(staff: Client) -> None:
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/", secret=SECRET)
    response = act(staff, "webhookendpoint", "send_test_events", endpoint.pk)
    assert "Enqueued 1 test event(s)." in messages_of(response)
    (test_job,) = webhook_jobs()
    assert test_job.payload["event_type"] == "webhook.test"
    assert test_job.payload["webhook_id"] == str(endpoint.pk)
    delivery = endpoint.deliveries.create(
        event="webhook.test", job_id=test_job.id, delivery_id=test_job.id, status_code=500
    )
    response = act(staff, "webhookdelivery", "redeliver", delivery.pk)
    assert "Enqueued 1 redelivery(ies)." in messages_of(response)
    again = [job for job in webhook_jobs() if job.id != test_job.id]
    assert [job.payload["delivery_id"] for job in again] == [test_job.id]
    assert again[0].payload["occurred_at"] == test_job.payload["occurred_at"]


def webhook_jobs() -> list[Job]:
    async def read() -> list[Job]:
        queue = await create_redis_queue(config=get_queue_config())
        try:
            ids = await queue.redis.zrange("aragora:queue:webhook_delivery:idx:pending", 0, -1)
            return [job for job_id in ids if (job := await queue.get_status(job_id))]
        finally:
            await queue.close()

    return asyncio.run(read())


def test_admin_callback_signing_secret_is_write_only(staff: Client) -> None:
    add = reverse("admin:queue_app_signingsecret_add")
    assert 'type="password" name="new_secret"' in staff.get(add).content.decode()
    assert staff.post(add, {"organization": "acme", "new_secret": "whsec_short"}).status_code == 200
    assert staff.post(add, {"organization": "acme", "new_secret": SECRET}).status_code == 302
    row = SigningSecret.objects.get()
    assert row.secret == SECRET and SECRET not in row.secret_encrypted
    changelist = staff.get(reverse("admin:queue_app_signingsecret_changelist")).content.decode()
    change = reverse("admin:queue_app_signingsecret_change", args=[row.pk])
    assert "acme" in changelist and SECRET not in changelist + staff.get(change).content.decode()


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


def test_admin_read_only_records_cannot_be_deleted(staff: Client) -> None:
    record = JobRecord.objects.create(job_id="j-9", queue="debates", status="failed")
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/", secret=SECRET)
    delivery = endpoint.deliveries.create(event="job.failed", job_id="j-9", status_code=500)
    routed = RouteDelivery.objects.create(
        job_id="j-9", debate_id="d-9", platform="slack", target="#ops", outcome="failed"
    )
    healed = healing("h-9")
    for model, pk, shown in [
        ("jobrecord", record.pk, "j-9"),
        ("jobfailure", record.pk, "j-9"),
        ("webhookdelivery", delivery.pk, "j-9"),
        ("routedelivery", routed.pk, "d-9"),
        ("healingrecord", healed.pk, "h-9"),
    ]:
        changelist = staff.get(reverse(f"admin:queue_app_{model}_changelist")).content.decode()
        assert shown in changelist and 'value="delete_selected"' not in changelist, model
        delete = reverse(f"admin:queue_app_{model}_delete", args=[pk])
        assert staff.get(delete).status_code == 403, model


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


async def _register(worker_id: str, active_jobs: int = 0) -> None:
    queue = await create_redis_queue(config=get_queue_config())
    try:
        info = {"worker_id": worker_id, "queues": ["debates"], "max_concurrent": 4}
        registry = WorkerRegistry(queue.redis, queue.config)
        await registry.register({**info, "active_jobs": active_jobs}, 30)
    finally:
        await queue.close()


def reasons_on_page(client: Client, job_id: str) -> list[str]:
    record = JobRecord.objects.get(job_id=job_id)
    page = client.get(reverse("admin:queue_app_jobrecord_change", args=[record.pk]))
    return re.findall(r'<li class="job-reason">(.*?)</li>', page.content.decode())


def test_admin_job_detail_explains_why_a_job_is_not_running(staff: Client) -> None:
    delayed = enqueue(delay_seconds=600)[0]
    ready = enqueue(2)[0]
    done = enqueue()[0]
    drain_ledger()
    [first] = reasons_on_page(staff, delayed)[:1]
    match = re.fullmatch(r"It waits for its run time: \S+ \S+ UTC \(in (\d+) s\)\.", first)
    assert match is not None and 590 <= int(match.group(1)) <= 600
    assert "No live worker serves queue “debates”" in reasons_on_page(staff, delayed)[1]
    assert reasons_on_page(staff, ready) == [
        "No live worker serves queue “debates”: start one with "
        "`manage.py queue_worker --queues debates`."
    ]
    asyncio.run(_register("w-live", active_jobs=1))
    assert reasons_on_page(staff, ready) == [
        "It is one of 3 job(s) ready in queue “debates”, served by 1 live worker(s) "
        "using 1 of 4 slot(s)."
    ]
    assert reasons_on_page(staff, delayed)[1:] == []  # a worker serves it: only the run time

    started = start_jobs(1)[0]  # by "test-worker", which never registered
    assert "Its worker test-worker stopped heart-beating" in reasons_on_page(staff, started)[0]
    asyncio.run(_register("test-worker"))
    assert reasons_on_page(staff, started) == []
    process_jobs("completed")
    assert reasons_on_page(staff, done) == []


def healing(debate_id: str, **changes: Any) -> HealingRecord:
    """Create the record of a first healing of ``debate_id``."""
    values = {"attempt": 1, "reason": "error", "action": "notify_user", "success": True}
    return HealingRecord.objects.create(
        heal_job_id=f"heal:{debate_id}:1",
        debate_id=debate_id,
        root_debate_id=debate_id,
        **{**values, **changes},
    )


def test_healing_records_link_the_healed_and_the_new_debate(staff: Client) -> None:
    record = healing(
        "d-old", action="extend_rounds", message="enqueued debate d-new", new_debate_id="d-new"
    )
    listing = staff.get("/admin/queue_app/healingrecord/").content.decode()
    assert "/admin/queue_app/jobrecord/?q=d-old" in listing
    assert "/admin/queue_app/jobrecord/?q=d-new" in listing
    page = staff.get(f"/admin/queue_app/healingrecord/{record.pk}/change/")
    assert page.status_code == 200 and "enqueued debate d-new" in page.content.decode()
    assert staff.get("/admin/queue_app/healingrecord/add/").status_code == 403
