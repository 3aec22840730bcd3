"""``/metrics`` of the web: public, or open only to a bearer token and/or allowed networks.

``ARAGORA_METRICS_TOKEN`` lets in requests with ``Authorization: Bearer <token>``;
``ARAGORA_METRICS_ALLOW`` (CIDR networks) lets in peers whose address is in one of them. With
both set either is enough; with neither the page is public (development).
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from django_prometheus.exports import ExportToDjangoView


def _has_token(request: HttpRequest) -> bool:
    token = settings.ARAGORA_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given, token)


def _from_allowed_network(request: HttpRequest) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    networks = settings.ARAGORA_METRICS_ALLOW
    return any(peer in ipaddress.ip_network(net, strict=False) for net in networks)


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve the Prometheus exposition to callers the settings let in."""
    token, networks = settings.ARAGORA_METRICS_TOKEN, settings.ARAGORA_METRICS_ALLOW
    if not token and not networks:
        return ExportToDjangoView(request)
    if _has_token(request) or _from_allowed_network(request):
        return ExportToDjangoView(request)
    if token:
        response = JsonResponse({"detail": "Send the metrics token as a Bearer token."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return JsonResponse({"detail": "Metrics are not served to this address."}, status=403)
