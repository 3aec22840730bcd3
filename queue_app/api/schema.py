"""The OpenAPI schema of the queue API tells every answer an operation can give.

``QueueAutoSchema`` adds the error responses to each operation from what the view does: 400 for
input, 401/403 for callers, 404 for path ids, 411/413/415 for bodies, 503 where Redis answers,
plus the codes a view names in ``error_statuses``. ``strict_request_bodies`` (a postprocessing
hook) marks request bodies ``additionalProperties: false``, as the serializers refuse unknown
keys.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

DETAIL = inline_serializer("Error", {"detail": serializers.CharField()})
#: What each error status means; all answer ``{"detail": ...}`` but 400 and 422 (field errors).
ERRORS = {
    400: "Invalid input: field names with their messages (or `detail` for a malformed body).",
    401: "No credentials, or invalid ones.",
    403: "Refused (a session without its CSRF token).",
    404: "No such object in the caller's scope.",
    409: "The job is not in a state that allows this.",
    411: "A chunked body reached a server that cannot read it: send Content-Length.",
    413: "Request body larger than ARAGORA_API_MAX_BODY_BYTES.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used before for another request (`detail`), the payload "
    "names a debate or webhook endpoint the caller cannot see or a gauntlet_id already taken "
    "(field names with messages), or the jobs of a bulk request cannot go together (`detail`: "
    "more than one queue, one id twice).",
    429: "Too many enqueues (ARAGORA_API_ENQUEUE_RATE); see Retry-After.",
    503: "Redis is unreachable; see Retry-After.",
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
UNSAFE_METHODS = BODY_METHODS | {"DELETE"}


def _error(status: int) -> OpenApiResponse:
    if status in (400, 422):
        return OpenApiResponse(OpenApiTypes.OBJECT, description=ERRORS[status])
    return OpenApiResponse(DETAIL, description=ERRORS[status])


class QueueAutoSchema(AutoSchema):
    """drf-spectacular's schema with the error responses of each operation."""

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        for status in sorted(self._error_statuses()):
            code = str(status)
            responses.setdefault(code, self._get_response_for_code(_error(status), code))
        return responses

    def _error_statuses(self) -> set[int]:
        statuses = {401}
        if self.method in UNSAFE_METHODS:
            statuses.add(403)
        if self.method in BODY_METHODS:
            statuses |= {411, 413}
            if self.get_request_serializer() is not None:
                statuses |= {400, 415}
        if self._get_pagination_parameters():
            statuses.add(400)
        if "{" in self.path:
            statuses.add(404)
        action = getattr(self.view, "action", None)
        if getattr(self.view, "redis_backed", False) or action in getattr(
            self.view, "redis_actions", ()
        ):
            statuses.add(503)
        declared = getattr(self.view, "error_statuses", {})
        return statuses | set(declared.get(self.method.lower(), ()))


def strict_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Mark request body components ``additionalProperties: false``, and a request body
    required when its schema has required fields (or is a ``oneOf`` of such)."""
    components = result.get("components", {}).get("schemas", {})
    for name, component in components.items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody", {})
            ref = body.get("content", {}).get("application/json", {}).get("schema", {})
            component = components.get(ref.get("$ref", "").rsplit("/", 1)[-1], {})
            if "required" in component or "oneOf" in component:
                body["required"] = True
    return result
