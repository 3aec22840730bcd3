"""Agent settings (providers, timeouts, reply length) and ``AgentPool``, the agents of one worker.

Every worker kind that asks agents (debates, explanations, stress tests) resolves them through
an ``AgentPool``: one shared HTTP client, the same adapters and the same errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queue_app.queue import ConfigError

from .adapters import ProviderSettings, resolve_agent

if TYPE_CHECKING:
    from .adapters import Agent

ANTHROPIC_DEFAULTS = ProviderSettings(
    key_variable="ANTHROPIC_API_KEY",
    base_url="https://api.anthropic.com",
    model="claude-sonnet-4-5",
)
OPENAI_DEFAULTS = ProviderSettings(
    key_variable="OPENAI_API_KEY",
    base_url="https://api.openai.com",
    model="gpt-4.1-mini",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSettings:
    """What agents need: provider access, HTTP timeouts and reply length."""

    anthropic: ProviderSettings = ANTHROPIC_DEFAULTS
    openai: ProviderSettings = OPENAI_DEFAULTS
    #: Seconds to open a connection to a provider.
    connect_timeout_seconds: float = 10.0
    #: Seconds to wait for a provider's answer; model replies can be slow.
    read_timeout_seconds: float = 120.0
    #: ``max_tokens`` of each Anthropic reply.
    max_tokens: int = 1024

    def __post_init__(self) -> None:
        for name in ("connect_timeout_seconds", "read_timeout_seconds", "max_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AgentSettings:
        """Read the settings from the variables ``environ`` holds; unset values keep defaults.

        Workers never read the environment themselves: ``aragora_site/settings.py`` collects
        these variables into ``ARAGORA_AGENT_ENV`` (a library user passes ``os.environ``).

        Variables: ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``ARAGORA_ANTHROPIC_MODEL``,
        ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ARAGORA_OPENAI_MODEL``,
        ``ARAGORA_AGENT_CONNECT_TIMEOUT``, ``ARAGORA_AGENT_READ_TIMEOUT`` (seconds) and
        ``ARAGORA_AGENT_MAX_TOKENS``.
        """
        env = environ
        return cls(
            anthropic=_provider_from_env(env, "ANTHROPIC", ANTHROPIC_DEFAULTS),
            openai=_provider_from_env(env, "OPENAI", OPENAI_DEFAULTS),
            connect_timeout_seconds=_env_number(env, "ARAGORA_AGENT_CONNECT_TIMEOUT", 10.0, float),
            read_timeout_seconds=_env_number(env, "ARAGORA_AGENT_READ_TIMEOUT", 120.0, float),
            max_tokens=_env_number(env, "ARAGORA_AGENT_MAX_TOKENS", 1024, int),
        )

    def providers(self) -> dict[str, ProviderSettings]:
        """Return the provider settings keyed by agent adapter name."""
        return {"anthropic-api": self.anthropic, "openai-api": self.openai}


def _provider_from_env(
    env: Mapping[str, str], vendor: str, defaults: ProviderSettings
) -> ProviderSettings:
    return ProviderSettings(
        key_variable=defaults.key_variable,
        api_key=env.get(defaults.key_variable) or None,
        base_url=env.get(f"{vendor}_BASE_URL") or defaults.base_url,
        model=env.get(f"ARAGORA_{vendor}_MODEL") or defaults.model,
    )


def _env_number[N: (int, float)](
    env: Mapping[str, str], name: str, default: N, kind: Callable[[str], N]
) -> N:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from error
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


class AgentPool:
    """Resolve agents by adapter name on one shared HTTP client; close it when done."""

    def __init__(self, settings: AgentSettings | None = None) -> None:
        import httpx  # imported by the first pool: processes that ask no agent never load it

        self.settings = settings or AgentSettings()
        timeout = httpx.Timeout(
            self.settings.read_timeout_seconds, connect=self.settings.connect_timeout_seconds
        )
        self._client = httpx.AsyncClient(timeout=timeout)

    def agent(self, name: str) -> Agent:
        """Return the agent named ``name`` (raises ``AgentRejected`` for unknown or keyless)."""
        return resolve_agent(
            name,
            client=self._client,
            providers=self.settings.providers(),
            max_tokens=self.settings.max_tokens,
        )

    def agents(self, names: list[str]) -> list[Agent]:
        """Resolve every agent before the first call, so configuration errors cost no call."""
        return [self.agent(name) for name in names]

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self._client.aclose()
