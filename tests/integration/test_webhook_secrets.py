"""Webhook signing secrets at rest: encrypted by the migration, rotated by a command, checked."""

from __future__ import annotations

from io import StringIO
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from queue_app.models import SigningSecret, WebhookEndpoint
from queue_app.queue import get_queue_config
from workers.webhooks import SecretCipher

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
BEFORE = [("queue_app", "0003_jobrecord_job_id_prefix")]
AFTER = [("queue_app", "0004_webhook_secret_encryption")]


def latest() -> list[tuple[str, str]]:
    """The newest migration of every app: where the schema of the other tests stands."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_plain_secrets_and_back(settings: SettingsWrapper) -> None:
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [OLD]
    try:
        old_state = migrate(BEFORE).loader.project_state(BEFORE).apps
        old_model = old_state.get_model("queue_app", "WebhookEndpoint")
        pk = old_model.objects.create(url="https://a.example/", secret="plain-secret-0123").pk
        migrate(AFTER)
        with connection.cursor() as cursor:
            cursor.execute("SELECT secret_encrypted FROM queue_app_webhookendpoint")
            ((token,),) = cursor.fetchall()
            columns = {
                c.name
                for c in connection.introspection.get_table_description(
                    cursor, "queue_app_webhookendpoint"
                )
            }
        assert "secret" not in columns and "plain-secret" not in token
        assert SecretCipher([OLD]).decrypt(token) == "plain-secret-0123"
        assert WebhookEndpoint.objects.get(pk=pk).secret == "plain-secret-0123"
        back = migrate(BEFORE).loader.project_state(BEFORE).apps
        assert back.get_model("queue_app", "WebhookEndpoint").objects.get(pk=pk).secret == (
            "plain-secret-0123"
        )
    finally:
        migrate(latest())


@pytest.mark.django_db
def test_rotate_command_reencrypts_with_the_newest_key(settings: SettingsWrapper) -> None:
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [OLD]
    endpoint = WebhookEndpoint.objects.create(url="https://a.example/", secret="endpoint-secret-1")
    SigningSecret.objects.create(organization="acme", secret="callback-secret-1")
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [NEW, OLD]
    out = StringIO()
    call_command("rotate_webhook_secrets", stdout=out)
    assert out.getvalue().strip() == "re-encrypted 2 webhook secrets with the newest key"
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [NEW]  # the old key is gone now
    endpoint.refresh_from_db()
    assert endpoint.secret == "endpoint-secret-1"
    assert SigningSecret.objects.get().secret == "callback-secret-1"


@pytest.mark.django_db
def test_rotate_command_changes_nothing_when_a_secret_opens_with_no_key(
    settings: SettingsWrapper,
) -> None:
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [OLD]
    WebhookEndpoint.objects.create(url="https://a.example/", secret="endpoint-secret-1")
    lost = WebhookEndpoint.objects.create(url="https://b.example/", secret="endpoint-secret-2")
    tokens = dict(WebhookEndpoint.objects.values_list("pk", "secret_encrypted"))
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [NEW, OLD]
    WebhookEndpoint.objects.filter(pk=lost.pk).update(
        secret_encrypted=SecretCipher([Fernet.generate_key().decode()]).encrypt("x")
    )
    with pytest.raises(CommandError, match=f"webhook endpoint {lost.pk} opens with no key"):
        call_command("rotate_webhook_secrets")
    first = WebhookEndpoint.objects.exclude(pk=lost.pk).values_list("secret_encrypted", flat=True)
    assert list(first) == [token for pk, token in tokens.items() if pk != lost.pk]


def test_settings_keys_reach_the_queue_config(settings: SettingsWrapper) -> None:
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [NEW, OLD]
    assert get_queue_config().webhook_secret_keys == (NEW, OLD)
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = []  # development: derived from SECRET_KEY
    derived = get_queue_config().webhook_secret_keys
    assert len(derived) == 1 and derived[0] not in (NEW, OLD)
    SecretCipher(derived).decrypt(SecretCipher(derived).encrypt("works"))


def test_deploy_check_warns_without_secret_keys(settings: SettingsWrapper) -> None:
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = []
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "aragora.W002" in {message.id for message in found}
    settings.ARAGORA_WEBHOOK_SECRET_KEYS = [NEW]
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "aragora.W002" not in {message.id for message in found}
