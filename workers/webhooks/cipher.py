"""SecretCipher: webhook signing secrets encrypted at rest with Fernet keys (key rotation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from queue_app.queue import ConfigError

#: How to make a key, for error messages.
KEY_HINT = (
    "generate one with: python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class SecretUnreadable(ConfigError):
    """No key of ARAGORA_WEBHOOK_SECRET_KEYS decrypts the stored webhook secret."""


class SecretCipher:
    """Encrypt with the first key, decrypt with any (``ARAGORA_WEBHOOK_SECRET_KEYS``)."""

    def __init__(self, keys: Sequence[str]) -> None:
        # Imported by the first cipher: processes that read no secret never load cryptography.
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise ConfigError(
                "webhook signing secrets are stored encrypted: set ARAGORA_WEBHOOK_SECRET_KEYS "
                f"({KEY_HINT})"
            )
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, secret: str) -> str:
        """Return ``secret`` encrypted with the first key (a Fernet token)."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Return the secret in ``token`` (``SecretUnreadable`` when no key opens it)."""
        return _unlock(self._fernet.decrypt, token, "utf-8")

    def rotate(self, token: str) -> str:
        """Return ``token``'s secret encrypted again with the first key."""
        return _unlock(self._fernet.rotate, token, "ascii")


def _unlock(step: Callable[[bytes], bytes], token: str, encoding: str) -> str:
    """Return ``step`` applied to ``token``, decoded (``SecretUnreadable`` if no key opens it)."""
    from cryptography.fernet import InvalidToken

    try:
        return step(token.encode("ascii")).decode(encoding)
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable() from None
