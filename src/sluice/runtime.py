"""The process's shared resources, opened and closed by the lifespan (``sluice.lifespan``).

Resources only: connections, caches, backends, the task group. The use cases that act on
them live in their owners (``sluice.control`` for the control plane, ``sluice.pipeline`` for
requests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from sluice.auth.cache import KeyCache
from sluice.budgets.base import BudgetStore
from sluice.budgets.pricing import Pricer
from sluice.cache.service import ResponseCache
from sluice.clock import Clock
from sluice.config import GatewayConfig, load_config, load_default_config
from sluice.config.model import Prices
from sluice.credentials.resolve import ProviderCredentials
from sluice.documents.reader import DocumentReader
from sluice.lifecycle import Lifecycle
from sluice.limits.base import Limiter
from sluice.mcp.registry import Registry
from sluice.observability.wiring import Observability
from sluice.pipeline.services import Services
from sluice.providers.base import ReadLimits
from sluice.routing.router import Router
from sluice.routing.table import ModelTable
from sluice.settings import Settings
from sluice.storage.sql.repository import SqlStorage
from sluice.tasks import Background
from sluice.usage.bodies import BodyPolicy
from sluice.usage.writer import UsageWriter

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class Runtime:
    """The process's shared resources, built in the lifespan and passed down."""

    settings: Settings
    config: GatewayConfig
    clock: Clock
    storage: SqlStorage
    keys: KeyCache
    usage: UsageWriter
    session: aiohttp.ClientSession
    table: ModelTable
    router: Router
    limiter: Limiter
    budgets: BudgetStore
    pricer: Pricer
    observability: Observability
    mcp: Registry
    """The upstream MCP servers (config and stored), their connections and health."""
    redis: Redis | None = None
    credentials: ProviderCredentials = field(default_factory=ProviderCredentials)
    """Each provider's API key: the decrypted stored one (written by the control plane's
    credential service only), else the config's ``api_key``."""
    body_policy: BodyPolicy | None = None
    """Body logging, when the config turns it on for any org or team."""
    cache: ResponseCache | None = None
    """The response cache (``None``: no model or team enables it)."""
    documents: DocumentReader | None = None
    """Reads documents in chat (``None``: ``documents.enabled`` is off); set once the files
    service exists, closed by the lifespan."""
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    """Starting (the database not reached yet), ready or draining."""
    tasks: Background = field(default_factory=Background)
    """The lifespan's one task group and the background tasks running in it."""
    provider_types: dict[str, str] = field(default_factory=dict)
    """Provider name → type (live: the catalogue's swaps update it in place)."""
    prices: dict[str, Prices] = field(default_factory=dict)
    """Public model name → its prices (config or admin override; live, like
    ``provider_types``): the one place requests are priced from besides ``genai-prices``."""

    def __post_init__(self) -> None:
        self.follow_catalogue(self.config)

    def follow_catalogue(self, config: GatewayConfig) -> None:
        """Point the live maps at ``config``'s providers and models (in place: the data
        plane holds these very dicts)."""
        types = {name: p.type for name, p in config.providers.items()}
        prices = {m.name: m.prices for m in config.models if m.prices is not None}
        self.provider_types.clear()
        self.provider_types.update(types)
        self.prices.clear()
        self.prices.update(prices)

    @property
    def services(self) -> Services:
        obs = self.observability
        extra: dict[str, Any] = (
            {"tracing": obs.tracing, "live": obs.live, "redactor": obs.redactor}
            if obs is not None
            else {}
        )
        return Services(
            **extra,
            response_metadata=self.config.observability.response_metadata,
            table=self.table,
            session=self.session,
            router=self.router,
            limiter=self.limiter,
            budgets=self.budgets,
            pricer=self.pricer,
            credentials=self.credentials,
            provider_types=self.provider_types,
            prices=self.prices,
            total_timeout_s=self.config.routing.total_timeout_s,
            cache=self.cache,
            documents=self.documents,
            read_limits=ReadLimits(
                body_bytes=self.settings.max_upstream_body_bytes,
                event_bytes=self.settings.max_upstream_event_bytes,
            ),
        )


def resolve_config(settings: Settings) -> GatewayConfig:
    """The config file named by the settings, or the packaged default."""
    return load_config(settings.config) if settings.config else load_default_config()


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None),
        skip_auto_headers=("User-Agent",),
        auto_decompress=True,
    )
