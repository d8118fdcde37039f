"""Configuration, read from the environment (and an optional `.env`) by pydantic-settings.

Settings are built by whoever starts the app (the CLI, a test) and passed to the app factory; nothing
reads them at import time.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from callmemory.core.config import OptionalSecret, OptionalText
from callmemory.core.trust import Disclosure, DisclosurePolicy
from callmemory.memory.search.settings import SearchSettings
from callmemory.platforms.seed.settings import SeedSettings
from callmemory.platforms.twilio.settings import TwilioSettings
from callmemory.platforms.voipbin.settings import VoipbinSettings
from callmemory.summaries.settings import SummarySettings

# Values that people paste from examples; refusing them outside development stops a deployment from
# hashing every caller under a key that is published in our own README.
_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev-secret", "changethis"})


class ApiKey(BaseModel):
    """One integrator's bearer token for the /v1 API, optionally limited to one bot number."""

    key: SecretStr = Field(description="The bearer token; at least 24 characters.")
    bot_number: str | None = Field(
        default=None, description="When set, the key reads and writes only this bot's callers."
    )
    name: str = Field(default="integrator", description="Shown in logs, never the key itself.")

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 24:
            raise ValueError("an API key must be at least 24 characters long")
        return value


def _env(name: str) -> AliasChoices:
    """Accept both the conventional bare name (DATABASE_URL) and the prefixed one (CALLMEMORY_...)."""
    return AliasChoices(name, f"CALLMEMORY_{name}")


class Settings(BaseSettings, SeedSettings, VoipbinSettings, TwilioSettings, SummarySettings, SearchSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLMEMORY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = Field(
        default="development",
        description="production refuses to start without DATABASE_URL, REDIS_URL, a real hash secret and "
        "a webhook secret or token.",
    )
    host: str = Field(default="127.0.0.1", description="Address `callmemory serve` listens on.")
    port: int = Field(default=8080, description="Port `callmemory serve` listens on.")
    data_dir: Path = Field(
        default=Path(".callmemory"),
        description="Embedded Postgres/Redis data and the generated hashing secret live here.",
    )

    database_url: OptionalText = Field(
        default=None,
        validation_alias=_env("DATABASE_URL"),
        description="Postgres, e.g. postgresql://user:pw@host:5432/db. Unset: an embedded Postgres.",
    )
    redis_url: OptionalText = Field(
        default=None,
        validation_alias=_env("REDIS_URL"),
        description="Redis, e.g. redis://host:6379/0; a cluster: redis+cluster://host:7000, ?cluster=true "
        "or a host list; Sentinel: redis+sentinel://s1:26379,s2:26379/master (scaling.md). "
        "Unset: an embedded Redis.",
    )
    redis_prefix: str = Field(
        default="cm", pattern=r"^[A-Za-z0-9_.:-]{1,32}$", description="First part of every Redis key."
    )
    redis_timeout_s: float = Field(
        default=2.0, description="Connect and command timeout, and the wait for a free pool connection."
    )
    redis_max_connections: int = Field(
        default=200,
        ge=1,
        description="Per worker; a command waits up to redis_timeout_s for a free one. On one server (or "
        "Sentinel's master) the hot path's round trips keep as many again of their own.",
    )
    redis_wait_replicas: int = Field(
        default=0,
        ge=0,
        description="With Redis replicas (Cluster or Sentinel): how many must acknowledge an event's "
        "writes (WAIT) before it is answered, so a failover loses no acknowledged turn; 0: answered "
        "without waiting (scaling.md).",
    )
    redis_wait_timeout_s: float = Field(
        default=0.25,
        gt=0,
        description="How long an event waits for those replicas; past it the event is answered all the "
        "same, and the shortfall logged. Below redis_timeout_s.",
    )
    database_pool_size: int = Field(
        default=10, description="Postgres connections per worker, plus as many again in overflow."
    )
    database_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Deadline of a Postgres operation a call waits for (archiving a hung-up call, reading a "
        "caller's memory, a late VoIPBin turn or summary), waiting for a pool connection and connecting "
        "included; also every connection's connect and pool wait. Past it the call goes on from Redis: "
        "the hangup answers archive_pending, the caller is greeted without archived memory.",
    )
    database_statement_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Deadline of any single Postgres statement, background work and admin commands "
        "included: the backstop for a Postgres that stops answering.",
    )
    ready_timeout_s: float = Field(
        default=0.5, gt=0, description="How long /readyz waits for Postgres before calling it down."
    )

    # Caller identity.
    hash_secret: OptionalSecret = Field(
        default=None,
        description="HMAC key for caller hashes. Generated and persisted when unset in development.",
    )
    default_region: str = Field(default="US", description="Region for numbers written without a + prefix.")
    strict_phone_numbers: bool = Field(
        default=False,
        description="Require numbers libphonenumber knows to be assigned, not only of a possible length.",
    )
    default_bot_number: OptionalText = Field(
        default=None, description="Bot number used when an event carries no `to`."
    )
    store_raw_numbers: bool = Field(
        default=False, description="Also keep the caller's E.164 number in Postgres (for call-backs)."
    )
    disclosure: Disclosure | None = Field(
        default=None,
        description="Which calls reach a caller's memory (docs/caller-trust.md). verified: only calls "
        "whose number the platform vouches for, or whom the bot verified during the call; the others "
        "are greeted and answered as new callers. open: every call, on caller ID alone, which anyone can "
        "fake. Unset: open, except in production, which refuses to start without a choice. A VoIPBin "
        "bot may set its own (`disclosure` in CALLMEMORY_VOIPBIN_BOTS).",
    )

    # Memory.
    recent_exchanges: int = Field(default=10, ge=1, le=200, description="Caller+bot pairs kept hot.")
    memory_ttl_s: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="How long a caller's memory stays in Redis after their last call (then: from Postgres).",
    )
    call_ttl_s: int = Field(
        default=24 * 3600, ge=60, description="How long live call state outlives its last event."
    )

    # Long-term memory (summaries, profile, prepared greeting) and the prompt's token budget.
    memory_context_tokens: int = Field(
        default=2000,
        ge=100,
        description="Hard budget for the memory in a prompt (summary, profile, earlier calls, this call's "
        "turns), counted with cl100k_base; the oldest material is dropped first.",
    )
    recent_call_summaries: int = Field(
        default=10, ge=0, le=100, description="Summaries of the most recent calls kept for the prompt."
    )

    # Integrator API.
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='Bearer keys for /v1, as JSON: [{"key": "...", "bot_number": "+14155550000", '
        '"name": "acme"}]; without bot_number a key may address every bot. No keys: /v1 refuses all.',
    )

    # Background upkeep (each instance runs both tasks; they coordinate through Redis).
    background_tasks: bool = Field(
        default=True, description="Run the pending-archive flusher and the idle-call sweeper."
    )
    flush_interval_s: float = Field(
        default=5.0, gt=0, description="How often ended calls waiting for Postgres are retried."
    )
    flush_backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between retries while Postgres stays down."
    )
    idle_call_s: float = Field(
        default=30 * 60,
        gt=0,
        description="A live call with no event for this long is archived (missed hangup, crashed instance); "
        "after Redis failed, counted from the failure (refused attempts leave no trace).",
    )
    sweep_interval_s: float = Field(default=30.0, gt=0, description="How often idle calls are looked for.")
    shutdown_flush_s: float = Field(
        default=10.0, ge=0, description="Time allowed at shutdown to finish upkeep and archive pending calls."
    )
    archive_refusals_max: int = Field(
        default=3,
        ge=1,
        description="Times Postgres may refuse one call's data (a data or integrity error, not an outage) "
        "before the call is quarantined: kept in Redis, counted in /readyz and listed by "
        "`callmemory quarantine list`, while the other calls go on being archived.",
    )

    # Webhook input limits.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Larger request bodies get 413.")
    max_speech_chars: int = Field(default=2000, ge=1, description="Longer speech or turn text gets 422.")

    # LLM.
    openai_api_key: OptionalSecret = Field(
        default=None,
        validation_alias=_env("OPENAI_API_KEY"),
        description="Unset: offline mode (the bot says so and still records every turn).",
    )
    openai_base_url: OptionalText = Field(
        default=None,
        validation_alias=_env("OPENAI_BASE_URL"),
        description="Any OpenAI-compatible server (vLLM, Ollama, ...). Unset: api.openai.com.",
    )
    llm_model: str = Field(
        default="gpt-4o-mini", description="Model of answers, and of summaries unless summary_model is set."
    )
    llm_max_tokens: int = Field(default=200, ge=1, description="max_tokens of an answer.")
    llm_temperature: float = Field(default=0.4, ge=0, le=2, description="temperature of an answer.")
    llm_timeout_s: float = Field(
        default=4.0, gt=0, description="Hard limit; the caller hears the fallback after it."
    )
    answer_max_chars: int = Field(
        default=300,
        ge=40,
        description="Longest answer spoken, in characters (about 20 s of speech at the default): a longer "
        "one is cut at a sentence boundary. Answers are made sayable first (docs/speech.md).",
    )
    system_prompt: str = Field(
        default="You are a helpful, friendly phone assistant. Use what you remember about the caller when "
        "it helps, and never read out their phone number.",
        description="The start of every prompt; the rules of a spoken answer, then the caller's memory "
        "follow it.",
    )
    fallback_line: str = Field(
        default="Sorry, I didn't catch that just now. Could you say it again?",
        description="Said when the LLM fails or is too slow; the turn is flagged `fallback`.",
    )
    offline_line: str = Field(
        default="I'm running in offline mode without a language model, so I can't really answer, "
        "but I have noted what you said.",
        description="Said instead of an answer when no OPENAI_API_KEY is set.",
    )
    greeting_new: str = Field(
        default="Hello! How can I help you today?", description="Greeting of a first-time caller."
    )
    greeting_returning: str = Field(
        default='Welcome back! Last time you told me: "{topic}". Is that what you are calling about, '
        "or is there something new?",
        description="Greeting of a returning caller until a prepared one exists; {topic}: their last topic.",
    )

    # Observability (observability/).
    metrics_enabled: bool = Field(
        default=True, description="Serve Prometheus metrics at /metrics (unauthenticated, like /healthz)."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="Log lines: text (readable) or one JSON object each (for log shippers); auto: text "
        "when stderr is a terminal, else JSON.",
    )
    otlp_endpoint: OptionalText = Field(
        default=None,
        description="Send OpenTelemetry traces to this OTLP/HTTP endpoint, e.g. "
        "http://collector:4318/v1/traces (needs `pip install callmemory[otel]`). Unset: no tracing.",
    )
    otel_service_name: str = Field(default="callmemory", description="service.name of the traces.")

    # `callmemory mcp` (ops/mcp.py): an MCP server that is a client of a running service's /v1 API.
    mcp_url: str = Field(
        default="http://127.0.0.1:8080", description="The callmemory service `callmemory mcp` talks to."
    )
    mcp_api_key: OptionalSecret = Field(
        default=None,
        description="The /v1 API key `callmemory mcp` sends (one of the service's CALLMEMORY_API_KEYS); "
        "a bot-scoped key limits the MCP client to that bot's callers.",
    )
    mcp_timeout_s: float = Field(default=10.0, gt=0, description="Time limit of one /v1 request of `mcp`.")

    @model_validator(mode="after")
    def _wait_for_replicas_within_the_redis_timeout(self) -> Self:
        if self.redis_wait_replicas and self.redis_wait_timeout_s >= self.redis_timeout_s:
            raise ValueError(
                f"CALLMEMORY_REDIS_WAIT_TIMEOUT_S ({self.redis_wait_timeout_s}) must be below "
                f"CALLMEMORY_REDIS_TIMEOUT_S ({self.redis_timeout_s}), which bounds the whole round trip"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret_in_production(self) -> Self:
        if self.environment != "production":
            return self
        secret = self.hash_secret.get_secret_value() if self.hash_secret else ""
        if secret.lower() in _PLACEHOLDER_SECRETS or len(secret) < 16:
            raise ValueError(
                "CALLMEMORY_HASH_SECRET must be set to a random value of at least 16 characters in production"
            )
        if not self.database_url or not self.redis_url:
            raise ValueError("DATABASE_URL and REDIS_URL are required in production (no embedded servers)")
        webhook = [s.get_secret_value() for s in (self.webhook_secret, self.webhook_token) if s]
        if not webhook:
            raise ValueError(
                "CALLMEMORY_WEBHOOK_SECRET (or CALLMEMORY_WEBHOOK_TOKEN) is required in production: "
                "without it anyone who can reach /webhook/call reads and writes callers' memory"
            )
        if any(w.lower() in _PLACEHOLDER_SECRETS or len(w) < 16 for w in webhook):
            raise ValueError(
                "CALLMEMORY_WEBHOOK_SECRET and CALLMEMORY_WEBHOOK_TOKEN must be random values of at least "
                "16 characters in production"
            )
        if self.disclosure is None:
            raise ValueError(
                "CALLMEMORY_DISCLOSURE must be chosen in production: `verified` opens a caller's memory only "
                "to calls whose number is vouched for or verified by the bot, `open` to anyone presenting "
                "the number, which anyone can fake (docs/caller-trust.md)"
            )
        return self

    @property
    def disclosure_policy(self) -> DisclosurePolicy:
        """Each bot's disclosure: the VoIPBin bots' own, else CALLMEMORY_DISCLOSURE (open when unset)."""
        bots = {number: bot.disclosure for number, bot in self.voipbin_bots.items() if bot.disclosure}
        return DisclosurePolicy(default=self.disclosure or Disclosure.OPEN, bots=bots)

    def describe_disclosure(self) -> str:
        """The disclosure policy in a line, for the banner of `serve`."""
        policy = self.disclosure_policy
        if policy.default is Disclosure.VERIFIED:
            said = "only to verified callers (CALLMEMORY_DISCLOSURE=verified)"
        else:
            chosen = "CALLMEMORY_DISCLOSURE=open" if self.disclosure else "CALLMEMORY_DISCLOSURE unset"
            said = f"OPEN to anyone presenting the number ({chosen}); see docs/caller-trust.md"
        others = sorted(n for n, d in policy.bots.items() if d is not policy.default)
        return said + (f"; {len(others)} VoIPBin bot(s) differ: {', '.join(others)}" if others else "")

    @property
    def summary_key(self) -> SecretStr | None:
        """The API key summaries are asked with; None: no LLM to summarise with, jobs stay queued."""
        return self.summary_api_key or self.openai_api_key

    @property
    def summaries_share_endpoint(self) -> bool:
        """Whether summaries go to the live answers' endpoint, where they compete with callers."""
        return self.summary_base_url is None or self.summary_base_url == self.openai_base_url

    def resolved_hash_secret(self) -> bytes:
        """The configured secret, or one generated once and kept in the data dir.

        Changing the secret orphans every caller's memory, so a generated one must be persisted, not
        regenerated on each start.
        """
        if self.hash_secret is not None:
            return self.hash_secret.get_secret_value().encode()
        path = self.data_dir / "hash_secret"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Several uvicorn workers may start at once: write aside, then link into place, which fails
            # for all but one, so nobody ever reads a half-written secret.
            tmp = self.data_dir / f".hash_secret.{os.getpid()}"
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
            tmp.unlink()
        return path.read_text().strip().encode()


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set a field of Settings, the preferred one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    prefix = Settings.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper()]


def describe_errors(exc: ValidationError | SettingsError) -> str:
    """A configuration error as an operator can act on it: one line per environment variable, naming it
    and what is wrong with it, and never the value given (it may be a secret, or sit next to one)."""

    def variable(field: str) -> str:
        info = Settings.model_fields.get(field)
        return env_names(field, info)[0] if info is not None else field

    if isinstance(exc, SettingsError):  # a complex value (JSON) that does not parse; the text names the field
        named = re.search(r'field "([^"]+)"', str(exc))
        return f"  {variable(named[1]) if named else 'a setting'}: not valid JSON"
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        message = error["msg"].removeprefix("Value error, ")
        field, *inside = error["loc"] or ("",)
        where = f" ({', '.join(_part(p) for p in inside)})" if inside else ""
        lines.append(f"  {variable(str(field))}{where}: {message}" if field else f"  {message}")
    return "\n".join(lines)


def _part(part: int | str) -> str:
    return f"item {part}" if isinstance(part, int) else part
