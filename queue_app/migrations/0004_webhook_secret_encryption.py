"""Webhook signing secrets encrypted at rest; callback endpoints and their signing secrets.

Existing secrets are encrypted with the first key of ``ARAGORA_WEBHOOK_SECRET_KEYS`` (a key
derived from ``SECRET_KEY`` when unset) before the plain-text column is dropped; going back
decrypts them into it again.
"""

from typing import Any

from django.db import migrations, models

from queue_app.conf import webhook_secret_keys
from workers.webhooks.cipher import SecretCipher


def encrypt_secrets(apps: Any, schema_editor: Any) -> None:
    """Fill ``secret_encrypted`` from the plain ``secret`` of every endpoint."""
    cipher = SecretCipher(webhook_secret_keys())
    endpoints = apps.get_model("queue_app", "WebhookEndpoint")
    for row in endpoints.objects.only("pk", "secret").iterator():
        token = cipher.encrypt(row.secret)
        endpoints.objects.filter(pk=row.pk).update(secret_encrypted=token)


def decrypt_secrets(apps: Any, schema_editor: Any) -> None:
    """Put the decrypted secret of every endpoint back into ``secret``."""
    cipher = SecretCipher(webhook_secret_keys())
    endpoints = apps.get_model("queue_app", "WebhookEndpoint")
    for row in endpoints.objects.only("pk", "secret_encrypted").iterator():
        secret = cipher.decrypt(row.secret_encrypted) if row.secret_encrypted else ""
        endpoints.objects.filter(pk=row.pk).update(secret=secret)


class Migration(migrations.Migration):
    dependencies = (("queue_app", "0003_jobrecord_job_id_prefix"),)

    operations = (
        migrations.AddField(
            model_name="webhookendpoint",
            name="secret_encrypted",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets, elidable=False),
        # A default lets the way back add the column again to existing rows (then filled).
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=models.CharField(default="", max_length=255),
        ),
        migrations.RemoveField(model_name="webhookendpoint", name="secret"),
        migrations.AddField(
            model_name="webhookendpoint",
            name="kind",
            field=models.CharField(
                choices=[("endpoint", "Endpoint"), ("callback", "Callback")],
                default="endpoint",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="deactivated_reason",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="delivery_id",
            field=models.CharField(blank=True, db_index=True, max_length=255),
        ),
        migrations.CreateModel(
            name="SigningSecret",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("organization", models.CharField(blank=True, max_length=100, unique=True)),
                ("secret_encrypted", models.TextField(editable=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "callback signing secret"},
        ),
    )
