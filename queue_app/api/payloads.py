"""Payloads of ``POST jobs/`` by job type: strict validation, and the schema that states it.

Each payload serializer refuses what its schema refuses and accepts what it allows: patterns
are written so that Python's ``re`` and the JSON Schema (ECMA) dialect read them alike
(``SPACE`` spells out the whitespace either one knows). A payload that names something the
caller cannot see (a debate, a webhook endpoint) is well-formed: it gets 422, not 400.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import exceptions, serializers, status

from queue_app.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)
from queue_app.models import WebhookEndpoint, check_webhook_target
from queue_app.queue import JobNotFound, get_queue_config
from queue_app.queue.origin import URL_PLATFORMS
from queue_app.queue.payloads import CONSENSUS_MODES
from queue_app.services import jobs
from workers.batch import BATCH_JOB_TYPE, MAX_BATCH_ITEMS
from workers.gauntlet import INPUT_TYPES, JOB_TYPE_GAUNTLET, PROFILES
from workers.gauntlet.probes import MAX_CONTENT_CHARS, MAX_DURATION_SECONDS
from workers.routing.jobs import JOB_TYPE_ROUTING_EMAIL
from workers.routing.jobs import JOB_TYPES as ROUTING_JOB_TYPES
from workers.transcription.jobs import BACKEND_NAMES, JOB_TYPE_TRANSCRIPTION_YOUTUBE
from workers.transcription.jobs import JOB_TYPES as TRANSCRIPTION_JOB_TYPES

#: Whitespace for Python and for ECMA regular expressions alike.
SPACE = r"\s\x1c-\x1f\x85\ufeff"
#: Text that is not blank once trimmed and has no NUL character.
TEXT_PATTERN = rf"^[^\x00]*[^\x00{SPACE}][^\x00]*$"
#: http(s) URLs: a dotted host name or an address, an optional port and path.
URL_PATTERN = r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]{1,5})?(/[!-~]*)?$"
URL_MESSAGE = "Enter a valid URL (http or https)."
#: Email addresses: no space or NUL (DRF refuses NUL in any string: the schema must say so).
EMAIL_PATTERN = rf"^[^@{SPACE}\x00]{{1,64}}@[^@{SPACE}\x00]+\.[^@{SPACE}\x00]+$"
TELEGRAM_PATTERN = r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$"
EXTENSION_PATTERN = r"^\.?[A-Za-z0-9]{1,8}$"


class UnknownReference(exceptions.APIException):
    """The payload names a debate or an endpoint the caller cannot see, or a taken id."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The payload refers to something that does not exist."
    default_code = "unknown_reference"


def text_field(**options: Any) -> StrictCharField:
    """Return a string field that is not blank and has no NUL (its schema pattern says so)."""
    return StrictCharField(validators=[RegexValidator(TEXT_PATTERN)], **options)


def pattern_field(pattern: str, message: str, **options: Any) -> StrictCharField:
    """Return a string field that must match ``pattern``."""
    return StrictCharField(validators=[RegexValidator(pattern, message)], **options)


def url_field(**options: Any) -> StrictCharField:
    """Return a webhook target URL field (public targets unless ARAGORA_WEBHOOK_ALLOW_PRIVATE)."""
    validators = [RegexValidator(URL_PATTERN, URL_MESSAGE), check_webhook_target]
    return StrictCharField(max_length=2000, validators=validators, **options)


class RefuseUnknownKeys:
    """Serializer mixin: answer 400 for keys that are not writable fields instead of ignoring
    them (the schema says ``additionalProperties: false``)."""

    def to_internal_value(self, data: Any) -> Any:
        """Refuse unknown keys, then validate the known ones."""
        if isinstance(data, dict):
            fields = self.fields.items()  # type: ignore[attr-defined]
            writable = {name for name, field in fields if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(RefuseUnknownKeys, serializers.Serializer):
    """A serializer that refuses unknown keys."""


# -- debate --------------------------------------------------------------------------------------


def _origin_variant(name: str, platforms: list[str], target: Any) -> type[StrictSerializer]:
    fields = {"platform": serializers.ChoiceField(choices=platforms), "target": target}
    return type(name, (StrictSerializer,), {**fields, "__doc__": f"A {name} origin."})


#: Each platform's targets: a URL, a chat id, one of the caller's endpoint ids, an address.
ORIGIN_TARGETS = {
    **dict.fromkeys(URL_PLATFORMS, (URL_PATTERN, "Enter the http(s) webhook URL of the channel.")),
    "telegram": (TELEGRAM_PATTERN, "Enter a Telegram chat id or @channelname."),
    "webhook": (r"^[0-9]{1,18}$", "Enter the id of a registered webhook endpoint."),
    "email": (EMAIL_PATTERN, "Enter an email address."),
}
ORIGIN_VARIANTS = [
    _origin_variant("UrlOrigin", list(URL_PLATFORMS), url_field()),
    *(
        _origin_variant(
            f"{platform.capitalize()}Origin",
            [platform],
            pattern_field(*ORIGIN_TARGETS[platform], max_length=2000),
        )
        for platform in ("telegram", "webhook", "email")
    ),
]


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="Origin", serializers=ORIGIN_VARIANTS, resource_type_field_name=None
    )
)
class OriginSerializer(StrictSerializer):
    """Where a debate came from: its result is routed back there (``queue_app.queue.origin``)."""

    platform = serializers.ChoiceField(choices=list(ORIGIN_TARGETS))
    target = StrictCharField(max_length=2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the target for its platform; a webhook endpoint must be the caller's (422)."""
        pattern, message = ORIGIN_TARGETS[attrs["platform"]]
        try:
            RegexValidator(pattern, message)(attrs["target"])
            if attrs["platform"] in URL_PLATFORMS:
                check_webhook_target(attrs["target"])
        except DjangoValidationError as error:
            raise serializers.ValidationError({"target": error.messages}) from error
        if attrs["platform"] == "webhook":
            endpoint = WebhookEndpoint.objects.filter(pk=int(attrs["target"])).first()
            scope = self.context.get("scope")
            if (
                endpoint is None
                or scope is None
                or not scope.allows(str(endpoint.owner_id or ""), endpoint.organization)
            ):
                raise UnknownReference({"origin": {"target": ["No such webhook endpoint."]}})
        return attrs


class DebatePayloadSerializer(StrictSerializer):
    """A debate payload; rounds, agents and question length within the ``debate_max_*`` config."""

    question = text_field()
    agents = serializers.ListField(child=text_field(max_length=100), min_length=1, required=False)
    rounds = StrictIntegerField(required=False)
    consensus = serializers.ChoiceField(choices=CONSENSUS_MODES, required=False)
    protocol = text_field(max_length=64, required=False)
    timeout_seconds = StrictIntegerField(min_value=1, required=False, allow_null=True)
    webhook_url = url_field(required=False, allow_null=True)
    origin = OriginSerializer(required=False)

    def get_fields(self) -> dict[str, Any]:
        """Bound rounds, agents and the question by the installed queue config."""
        fields = super().get_fields()
        config = get_queue_config()
        chars, rounds, agents = (
            config.debate_max_question_chars,
            config.debate_max_rounds,
            config.debate_max_agents,
        )
        fields["question"].max_length = chars
        fields["question"].validators.append(
            MaxLengthValidator(chars, f"question must be at most {chars} characters")
        )
        fields["rounds"].min_value, fields["rounds"].max_value = 1, rounds
        fields["rounds"].validators += [
            MinValueValidator(1, f"rounds must be between 1 and {rounds}"),
            MaxValueValidator(rounds, f"rounds must be between 1 and {rounds}"),
        ]
        fields["agents"].max_length = agents
        fields["agents"].validators.append(
            MaxLengthValidator(agents, f"agents must list at most {agents} agents")
        )
        return fields


# -- transcription -------------------------------------------------------------------------------


class TranscriptionOptions(StrictSerializer):
    """What every transcription payload may add to its source."""

    file_extension = pattern_field(
        EXTENSION_PATTERN, "Enter an extension like .mp3.", required=False
    )
    language = pattern_field(LANGUAGE_PATTERN, "Enter an ISO 639 code (en, pt-BR).", required=False)
    backend = serializers.ChoiceField(choices=BACKEND_NAMES, required=False)
    use_cache = StrictBooleanField(required=False)


class TranscriptionFromPath(TranscriptionOptions):
    """Transcribe a file of the media folder."""

    file_path = text_field(max_length=1000)


class TranscriptionFromData(TranscriptionOptions):
    """Transcribe media sent inline as base64."""

    file_data = StrictCharField(max_length=16 * 1024 * 1024, trim_whitespace=False)


class TranscriptionFromUrl(TranscriptionOptions):
    """Transcribe media downloaded from a URL."""

    url = pattern_field(URL_PATTERN, URL_MESSAGE, max_length=2000)


TRANSCRIPTION_SOURCES = {
    "file_path": TranscriptionFromPath,
    "file_data": TranscriptionFromData,
    "url": TranscriptionFromUrl,
}


class TranscriptionPayloadSerializer(serializers.Serializer):
    """A transcription payload: exactly one source (``url`` for ``transcription_youtube``)."""

    def to_internal_value(self, data: Any) -> Any:
        """Validate the payload with the serializer of the one source it names."""
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected an object."]})
        sources = [name for name in TRANSCRIPTION_SOURCES if name in data]
        youtube = self.context.get("job_type") == JOB_TYPE_TRANSCRIPTION_YOUTUBE
        if len(sources) != 1 or (youtube and sources != ["url"]):
            wanted = "url" if youtube else "exactly one of file_path, file_data and url"
            raise serializers.ValidationError({"non_field_errors": [f"Give {wanted}."]})
        source = TRANSCRIPTION_SOURCES[sources[0]](data=data)
        source.is_valid(raise_exception=True)
        return source.validated_data


# -- routing -------------------------------------------------------------------------------------


class RoutingPayloadSerializer(StrictSerializer):
    """A routing payload; the debate must be one the caller may see (else 422)."""

    debate_id = text_field(max_length=255)
    result = serializers.DictField(required=False)
    include_voice = StrictBooleanField(required=False)
    recipient_email = pattern_field(EMAIL_PATTERN, "Enter an email address.", required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Require an address for ``routing_email``; refuse debates outside the caller's scope."""
        if self.context.get("job_type") == JOB_TYPE_ROUTING_EMAIL and not attrs.get(
            "recipient_email"
        ):
            raise serializers.ValidationError({"recipient_email": ["This field is required."]})
        try:
            jobs.get_job(self.context["scope"], attrs["debate_id"])
        except JobNotFound:
            raise UnknownReference({"debate_id": ["No such debate job."]}) from None
        return attrs


class RoutingEmailPayload(RoutingPayloadSerializer):
    """A ``routing_email`` payload (the schema's view: an address is required)."""

    recipient_email = pattern_field(EMAIL_PATTERN, "Enter an email address.")


# -- batch explanations and stress tests ---------------------------------------------------------


class BatchPayloadSerializer(StrictSerializer):
    """A batch explanation: the debates to explain and the explainer's options."""

    debate_ids = serializers.ListField(
        child=text_field(max_length=255), min_length=1, max_length=MAX_BATCH_ITEMS
    )
    options = serializers.DictField(required=False)


class GauntletPayloadSerializer(StrictSerializer):
    """A stress test: the content, what it is, the auditors' persona and agents, the profile."""

    gauntlet_id = pattern_field(
        r"^[A-Za-z0-9_.-]{1,64}$", "Use 1 to 64 of A-Z a-z 0-9 _ . -", required=False
    )
    input_content = pattern_field(
        r"^[^\x00]+$",
        "Send the content (no NUL).",
        max_length=MAX_CONTENT_CHARS,
        trim_whitespace=False,
    )
    input_type = serializers.ChoiceField(choices=INPUT_TYPES, required=False)
    persona = pattern_field(
        r"^[^\x00]*$", "No NUL character.", max_length=500, required=False, allow_blank=True
    )
    agents = serializers.ListField(
        child=text_field(max_length=100), min_length=1, max_length=10, required=False
    )
    profile = serializers.ChoiceField(choices=list(PROFILES), required=False)
    max_duration_seconds = StrictFloatField(
        min_value=1, max_value=MAX_DURATION_SECONDS, required=False
    )


#: Payload serializer of each job type the API accepts.
PAYLOAD_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "debate": DebatePayloadSerializer,
    **dict.fromkeys(TRANSCRIPTION_JOB_TYPES, TranscriptionPayloadSerializer),
    **dict.fromkeys(ROUTING_JOB_TYPES, RoutingPayloadSerializer),
    BATCH_JOB_TYPE: BatchPayloadSerializer,
    JOB_TYPE_GAUNTLET: GauntletPayloadSerializer,
}
