"""Webhook signatures: Standard Webhooks headers, plus the reference's ``X-Signature-SHA256``.

Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id`` (the delivery id, the same
on every retry), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` =
``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``. The HMAC key of a ``whsec_<base64>``
secret is the decoded base64; the key of any other secret (endpoints created before
``whsec_`` secrets, secrets chosen by callers) is its UTF-8 bytes. Receivers verify with any
Standard Webhooks library, e.g. ``standardwebhooks.Webhook(secret)`` for ``whsec_`` secrets and
``Webhook(secret.encode())`` for the others.

``X-Signature-SHA256: sha256=<hex HMAC-SHA256 of the body, key = the secret's UTF-8 bytes>`` is
what receivers written for the reference check; it signs no timestamp, so prefer the former.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

#: Prefix of secrets in the Standard Webhooks format.
SECRET_PREFIX = "whsec_"
#: Random bytes of a generated secret.
SECRET_BYTES = 32
#: Header of the reference's signature.
REFERENCE_SIGNATURE_HEADER = "X-Signature-SHA256"


def generate_secret() -> str:
    """Return a new ``whsec_<base64>`` signing secret of ``SECRET_BYTES`` random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def check_secret(secret: str) -> None:
    """Refuse an empty secret, or a ``whsec_`` secret whose rest is not base64 of 24+ bytes."""
    if not secret:
        raise ValueError("a webhook signing secret must not be empty")
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret must continue with base64") from None
        if len(key) < 24:
            raise ValueError("a whsec_ secret must hold at least 24 bytes")


def signing_key(secret: str) -> bytes:
    """Return the HMAC key of ``secret``: decoded base64 for ``whsec_`` secrets, else UTF-8."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


def standard_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the Standard Webhooks headers of ``body`` sent as ``message_id`` at ``timestamp``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


def reference_signature(secret: str, body: bytes) -> str:
    """Return the reference's ``X-Signature-SHA256`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
