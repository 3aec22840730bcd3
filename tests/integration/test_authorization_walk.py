"""Walk every URL of the site: anonymous callers get nothing, other organizations see nothing.

The walk reads the URL conf itself (every pattern, path parameters filled), so a view added
later is walked too: a new URL open to anonymous callers fails ``test_only_listed_urls_are_public``
until it is protected or added to ``PUBLIC`` on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from queue_app.models import WebhookDelivery, WebhookEndpoint
from tests.api_support import JOBS, debate, make_user, token_client

pytestmark = pytest.mark.django_db

#: URLs anonymous callers may use. The API's schema and docs are served to anyone
#: (drf-spectacular's default); /metrics is open while ARAGORA_METRICS_TOKEN and
#: ARAGORA_METRICS_ALLOW are unset (tested closed below).
PUBLIC = {
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/admin/login/",
    "/admin/logout/",
    "/api/schema/",
    "/api/docs/",
    "/api/redoc/",
}
METHODS = ("get", "post", "put", "patch", "delete")
#: A named group of a URL regex: its name and its body.
GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")
#: Regex syntax left around the literal path once the groups are filled.
ANCHORS = re.compile(r"\^|\$|\\Z|\\A")


def walk_urls() -> Iterator[tuple[str, tuple[str, ...]]]:
    """Yield every URL of the site as a template (``{name}`` per parameter) and its parameters."""
    yield from _walk(get_resolver().url_patterns, "")


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: str
) -> Iterator[tuple[str, tuple[str, ...]]]:
    for pattern in patterns:
        regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, regex)
        else:
            template = ANCHORS.sub("", GROUP.sub(_placeholder, regex)).replace("\\", "")
            yield "/" + template, tuple(re.findall(r"\{(\w+)\}", template))


def _placeholder(match: re.Match[str]) -> str:
    """Return ``{name}``, or the first choice of a group of literal choices (``auth|queue_app``)."""
    name, body = match.group(1), match.group(2)
    return body.split("|")[0] if re.fullmatch(r"\w+(\|\w+)*", body) else "{" + name + "}"


def fill(template: str, values: dict[str, str]) -> str:
    """Return the URL with each parameter set from ``values`` (``1`` when not given)."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), template)


def protected(response: object) -> bool:
    """Tell whether an anonymous request was refused (401/403, or sent to the admin login)."""
    status = getattr(response, "status_code", 0)
    location = getattr(response, "headers", {}).get("Location", "")
    return status in (401, 403, 405) or (status == 302 and location.startswith("/admin/login/"))


def test_only_listed_urls_are_public(redis_url: str) -> None:
    client = Client()
    public = set()
    for template, _ in walk_urls():
        url = fill(template, {})
        if not all(protected(getattr(client, method)(url)) for method in METHODS):
            public.add(url)
    assert public == PUBLIC


def test_the_api_answers_anonymous_callers_401(redis_url: str) -> None:
    client = Client()
    api_urls = [fill(t, {}) for t, _ in walk_urls() if t.startswith("/api/queue/")]
    assert len(api_urls) >= 10
    for url in api_urls:
        for method in METHODS:
            assert getattr(client, method)(url).status_code in (401, 403), (method, url)


def test_metrics_are_closed_with_a_token(redis_url: str, settings: object) -> None:
    settings.ARAGORA_METRICS_TOKEN = "scrape-token-0123456789"  # type: ignore[attr-defined]
    assert Client().get("/metrics").status_code in (401, 403, 404)


def _organization_a_objects() -> dict[str, str]:
    """Create a job, a webhook endpoint and a delivery as a member of org A; return their ids."""
    alice = token_client(make_user("alice", "acme"))
    job_id = alice.post(JOBS, debate(), format="json").json()["id"]
    hook = {"url": "https://hooks.example.com/a", "secret": "whsec-0123456789abcdef"}
    endpoint_id = alice.post("/api/queue/webhooks/", hook, format="json").json()["id"]
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event="job.completed", job_id=job_id, delivered_at=timezone.now()
    )
    return {"job_id": job_id, "pk": str(endpoint_id), "delivery_id": str(delivery.pk)}


def _statuses(client: APIClient, url: str) -> dict[str, int]:
    return {method: getattr(client, method)(url, format="json").status_code for method in METHODS}


def test_another_organization_gets_404_for_every_object_url(redis_url: str) -> None:
    values = _organization_a_objects()
    outsider = token_client(make_user("carol", "globex"))
    colleague = token_client(make_user("bob", "acme"))
    object_urls = [
        fill(template, values)
        for template, names in walk_urls()
        if template.startswith("/api/") and names
    ]
    assert len(object_urls) >= 7
    for url in object_urls:
        unknown = set(re.findall(r"\{(\w+)\}", url))
        assert not unknown, f"{url}: give the walk a value of org A for {unknown}"
        seen = _statuses(outsider, url)
        assert set(seen.values()) <= {404, 405} and 404 in seen.values(), (url, seen)
    for url in object_urls:  # the same URLs reach org A's objects for a colleague
        assert _first_answer(colleague, url) not in (404, 405), url


def _first_answer(client: APIClient, url: str) -> int:
    """Return the first status other than 404/405, trying methods in order (DELETE last)."""
    status = 404
    for method in METHODS:
        status = getattr(client, method)(url, format="json").status_code
        if status not in (404, 405):
            break
    return status
