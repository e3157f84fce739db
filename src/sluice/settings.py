"""Process settings from the environment (``SLUICE_*``), read once by the composition root.

Nothing here runs at import: call :func:`load_settings` where the process starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""Default of ``SLUICE_MAX_UPSTREAM_BODY_BYTES`` (and of ``ReadLimits`` in the provider seam)."""
DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024
"""Default of ``SLUICE_MAX_UPSTREAM_EVENT_BYTES``."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/sluice`` or ``~/.local/share/sluice``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sluice"


class Settings(BaseSettings):
    """Everything the process needs that is not part of the YAML gateway config."""

    model_config = SettingsConfigDict(env_prefix="SLUICE_", frozen=True, extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    """Where the default SQLite database lives."""
    database_url: str | None = None
    """SQLAlchemy async URL; ``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``.
    Defaults to ``sqlite+aiosqlite:///<data_dir>/sluice.db``."""
    redis_url: str | None = None
    """Optional Redis URL; when set, readiness also checks Redis and key changes are broadcast."""
    redis_slot_lease_s: float = Field(default=30.0, ge=3.0, le=3600.0)
    """Lease of an in-flight slot (``max_parallel``) held in Redis. Each process renews the
    leases of its running requests every third of it (one Redis call for all of them), so
    a request keeps its slot however long it runs, while a slot whose process died, or
    whose release was lost to a Redis outage, frees within this long."""
    master_key: str | None = None
    """Admin bootstrap key, accepted on every route. Generated on first start when unset."""
    secret_key: SecretStr | None = None
    """Encrypts provider credentials stored through the admin API (AES-256-GCM): 32 bytes in
    base64, or a passphrase. Storing a credential without it is refused."""
    config: Path | None = None
    """YAML gateway config; the packaged demo config when unset."""
    max_body_bytes: int = 20 * 1024 * 1024
    """Largest request body accepted on the data plane (413 above it)."""
    max_upload_bytes: int = Field(default=26 * 1024 * 1024, gt=0)
    """Largest multipart body of ``/v1/audio/transcriptions``, ``/v1/audio/translations``
    and ``/v1/images/edits`` (OpenAI's 25 MB file and its form fields); 413 naming ``file``
    above it."""
    max_upstream_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    """Largest non-streamed answer read from a provider; past it the request fails with 502
    ``provider_bad_response`` and the connection is dropped (memory stays bounded)."""
    max_upstream_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, gt=0)
    """Largest single stream event read from a provider; past it the stream ends with a
    ``provider_bad_response`` error event (or a 502 before the first byte)."""
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Largest request head (request line and header fields) ``sluice serve`` reads: 431
    above it (414 when the URL alone is longer), and the connection is closed."""
    max_headers: int = Field(default=100, ge=1, le=10_000)
    """Most header fields in one request (431 above it)."""
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    """Seconds a request head may take to arrive, from the connection's opening (first
    request) or from its first byte (later requests on a kept-alive connection); a late
    one is answered 408 and the connection closed (slow-header clients, slowloris)."""
    keep_alive_timeout_s: int = Field(default=5, ge=1, le=3600)
    """Seconds an idle kept-alive connection stays open between requests. Behind a load
    balancer that reuses connections, set it above the balancer's own idle timeout."""
    usage_flush_interval_s: float = 0.25
    """How often the usage writer flushes its buffer."""
    usage_batch_size: int = 500
    """Rows per insert; a flush starts early when this many are buffered. The rows are
    prepared on the event loop a slice at a time (``sluice.usage.slices``), so the batch size
    does not bound the loop's pauses; fewer, larger flushes cost less per row (500 against
    200: ~6 % less CPU per request in the benchmark at c=16, the same p99 at c=1)."""
    usage_retention_days: int = Field(default=90, ge=0)
    """Days raw usage rows (the request log) are kept; 0 keeps them forever. Rollups, and so
    analytics summaries, series and budgets, are kept regardless."""
    usage_purge_interval_s: float = Field(default=3600.0, gt=0)
    """How often the retention task deletes expired usage rows and logged bodies."""
    key_refresh_interval_s: float = 1.0
    """How often each process checks the database for key changes made by other processes."""
    shutdown_grace_s: float = 30.0
    """How long in-flight requests may run after SIGTERM before they are ended (with a
    503 ``shutting_down``, or a terminal error event on a stream). Meanwhile readiness is
    503 and new requests get 503 ``shutting_down``."""
    startup_retry_max_s: float = Field(default=30.0, gt=0)
    """Longest pause between two attempts to reach the database while the process waits
    for it (the pause starts at 0.5 s and doubles). Until it answers, readiness and every
    route but liveness answer 503."""
    database_connect_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """PostgreSQL: longest wait to open a connection, or for a pooled one when all are busy.
    Past it the request answers 503 ``dependency_unavailable``."""
    database_command_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """PostgreSQL: longest wait for one statement of the running server (admin API, console,
    usage writer, background tasks); bounds a request against a frozen database. Migrations
    are not bounded by it."""
    max_keys_per_user: int = 20
    """Personal keys a user may hold at once, unless the user's own ``max_keys`` says."""
    migrate_on_start: bool = True
    """Run database migrations when the app starts (``sluice serve`` runs them once itself
    and turns this off for its workers)."""
    log_level: str = "info"
    """Level of the ``sluice`` and uvicorn loggers (``debug``, ``info``, ``warning``...)."""
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per log line (``sluice serve``); secrets are masked in both."""
    access_log: bool = True
    """One ``sluice.access`` line per data-plane request (written in batches, off the
    request path)."""
    metrics_auth: Literal["admin", "key", "none"] = "admin"
    """Who may read ``GET /metrics``: ``admin`` (the master key or an admin key), ``key``
    (any valid gateway key), ``none`` (anyone who can reach the port)."""
    metrics_dir: str | None = None
    """The multiprocess metrics directory; ``sluice serve --workers N`` sets it (and
    ``PROMETHEUS_MULTIPROC_DIR``) for its workers. Unset: metrics of this process only."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP collector (``http://host:4318``; ``/v1/traces`` is appended). Set: a span
    per request and per upstream attempt is exported. Unset: no spans are recorded."""
    otel_service_name: str = "sluice"
    """``service.name`` of the exported spans."""
    console_session_idle_s: float = 8 * 3600
    """A console session ends after this long without a page view."""
    console_session_max_s: float = 7 * 24 * 3600
    """A console session ends this long after sign-in, however active."""
    console_trust_proxy_headers: bool = False
    """Behind a TLS-terminating proxy: trust its ``X-Forwarded-Proto`` (``https`` marks the
    session cookie ``Secure``) and the last ``X-Forwarded-For`` address (login throttling).
    A request that arrives over https always gets a ``Secure`` cookie."""
    console_login_max_failures: int = 5
    """Failed sign-ins per account and per client address within the window before further
    attempts are refused until the oldest failure leaves the window."""
    console_login_window_s: float = 15 * 60
    bad_key_max_failures: int = Field(default=0, ge=0, le=1_000_000)
    """Failed key checks (a key presented but not valid) from one client address within
    ``bad_key_window_s`` after which that address gets 429 with ``Retry-After``, before its
    key is looked at, until the oldest failure leaves the window. 0 (default): off. Counted
    per process (see docs/configuration.md)."""
    bad_key_window_s: float = Field(default=60.0, gt=0, le=86_400)
    """The bad-key throttling window."""
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = ()
    """Addresses or networks (comma-separated CIDRs) of reverse proxies whose
    ``X-Forwarded-For`` names the client for the bad-key throttle: from such a peer the
    client is the right-most address in that header that is not itself a trusted proxy.
    From any other peer the header is ignored and the peer's address is the client."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'sluice.db'}"


def load_settings(**overrides: object) -> Settings:
    """Read ``SLUICE_*`` from the environment; ``overrides`` win (CLI flags, tests)."""
    return Settings.model_validate(overrides)


def env_value(name: str) -> str | None:
    """The one door to the process environment, used to resolve ``env:NAME`` secret refs."""
    return os.environ.get(name)
