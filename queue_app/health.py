"""Liveness endpoint for load balancers and `make run`."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer that the web process is up; no dependency is checked."""
    return JsonResponse({"status": "ok"})
