"""Django settings become the queue library's config, and bad values fail clearly."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from queue_app.conf import build_config, declared_queues, webhook_secret_keys
from queue_app.queue.config import QueueConfig, get_queue_config

RAW_DEFAULTS = dict.fromkeys(
    [
        "key_prefix",
        "retry_max_attempts",
        "retry_base_delay",
        "retry_max_delay",
        "claim_idle_ms",
        "max_job_ttl_days",
        "worker_block_ms",
        "consumer_group",
        "cluster_keys",
    ]
)


def queue_settings(**raw: str) -> override_settings:
    return override_settings(ARAGORA_QUEUE={**RAW_DEFAULTS, **raw})


def test_conf_unset_values_take_library_defaults(redis_url: str) -> None:
    with queue_settings():
        config = build_config()
    # Webhook secrets always have a key under Django: without one set, it derives from SECRET_KEY.
    assert config == QueueConfig(
        redis_url=redis_url, queues=declared_queues(), webhook_secret_keys=webhook_secret_keys()
    )


def test_conf_converts_raw_strings() -> None:
    with queue_settings(retry_max_attempts="5", retry_base_delay="0.5", cluster_keys="yes"):
        config = build_config()
    assert (config.retry_max_attempts, config.retry_base_delay) == (5, 0.5)
    assert config.cluster_keys is True


@pytest.mark.parametrize(
    ("field", "raw", "var"),
    [
        ("claim_idle_ms", "soon", "ARAGORA_QUEUE_CLAIM_IDLE_MS"),
        ("claim_idle_ms", "5", "ARAGORA_QUEUE_CLAIM_IDLE_MS"),
        ("retry_max_delay", "0", "ARAGORA_QUEUE_RETRY_MAX_DELAY"),
    ],
)
def test_conf_bad_value_names_its_variable(field: str, raw: str, var: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=var), queue_settings(**{field: raw}):
        build_config()


def test_conf_unknown_key_is_refused() -> None:
    with (
        pytest.raises(ImproperlyConfigured, match="retry_forever"),
        queue_settings(retry_forever="1"),
    ):
        build_config()


def test_conf_overridden_settings_rebuild_the_installed_config() -> None:
    with queue_settings(consumer_group="site-workers"):
        assert get_queue_config().consumer_group == "site-workers"
    assert get_queue_config().consumer_group == "debate-workers"
