"""Key rotation of stored webhook secrets: re-encrypt every one with the newest key."""

from __future__ import annotations

from django.db import transaction

from queue_app.models import SigningSecret, WebhookEndpoint, secret_cipher
from workers.webhooks import SecretUnreadable


def reencrypt_secrets() -> int:
    """Encrypt every stored secret again with the first key; return how many.

    One transaction: when some secret opens with none of the keys, nothing changes.

    Raises:
        SecretUnreadable: names the row no key of ``ARAGORA_WEBHOOK_SECRET_KEYS`` decrypts.
    """
    cipher = secret_cipher()
    count = 0
    with transaction.atomic():
        for model in (WebhookEndpoint, SigningSecret):
            rows = model.objects.exclude(secret_encrypted="").select_for_update()
            for pk, token in rows.values_list("pk", "secret_encrypted"):
                try:
                    fresh = cipher.rotate(token)
                except SecretUnreadable:
                    name = model._meta.verbose_name
                    raise SecretUnreadable(
                        f"the secret of {name} {pk} opens with no key of "
                        "ARAGORA_WEBHOOK_SECRET_KEYS: nothing was re-encrypted"
                    ) from None
                model.objects.filter(pk=pk).update(secret_encrypted=fresh)
                count += 1
    return count
