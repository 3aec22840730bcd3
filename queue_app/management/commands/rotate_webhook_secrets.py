"""``manage.py rotate_webhook_secrets``: re-encrypt webhook secrets with the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from queue_app.services.webhook_secrets import reencrypt_secrets
from workers.webhooks import SecretUnreadable


class Command(BaseCommand):
    """Re-encrypt every stored signing secret with the first ``ARAGORA_WEBHOOK_SECRET_KEYS``."""

    help = (
        "Re-encrypt the webhook signing secrets with the first key of "
        "ARAGORA_WEBHOOK_SECRET_KEYS (put the new key first, run this, then drop the old one)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        """Re-encrypt and say how many secrets were."""
        try:
            count = reencrypt_secrets()
        except SecretUnreadable as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"re-encrypted {count} webhook secrets with the newest key")
