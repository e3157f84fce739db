"""What the pipeline needs from the process: built once by the composition root, read by
every stage. Imports no stage, so every stage may import it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from sluice.budgets.base import BudgetStore
from sluice.budgets.pricing import Pricer
from sluice.cache.service import ResponseCache
from sluice.config.model import Prices
from sluice.documents.reader import DocumentReader
from sluice.limits.base import Limiter
from sluice.observability.live import Live
from sluice.observability.redact import Redactor
from sluice.observability.tracing import Tracing
from sluice.providers.base import ReadLimits
from sluice.routing.router import Router
from sluice.routing.table import ModelTable


@dataclass(frozen=True, slots=True)
class Services:
    """The process's shared resources and settings as the data plane sees them."""

    table: ModelTable
    session: aiohttp.ClientSession
    router: Router
    limiter: Limiter
    budgets: BudgetStore
    pricer: Pricer
    credentials: Mapping[str, str] = field(default_factory=dict)
    """Each provider's API key by provider name, resolved by the core (live; see
    ``sluice.credentials.resolve``); an attempt hands it to the adapter."""
    provider_types: Mapping[str, str] = field(default_factory=dict)
    """Provider name → type, for prices."""
    prices: Mapping[str, Prices] = field(default_factory=dict)
    """Public model name → price override from the config."""
    total_timeout_s: float = 600.0
    """Deadline of a whole request, retries and fallbacks included."""
    tracing: Tracing | None = None
    """Spans per request and attempt; ``None`` when no OTLP endpoint is set."""
    live: Live = field(default_factory=Live)
    """In-flight counters read by the metrics sampler."""
    redactor: Redactor = field(default_factory=Redactor)
    """Masks secrets in error messages before they reach a client."""
    response_metadata: bool = False
    """Every OpenAI-shaped answer carries the ``sluice`` metadata object (config opt-in)."""
    read_limits: ReadLimits = field(default_factory=ReadLimits)
    """How much of an upstream answer may be read (``SLUICE_MAX_UPSTREAM_*``)."""
    cache: ResponseCache | None = None
    """The response cache; ``None`` when no model or team enables it (docs/caching.md)."""
    documents: DocumentReader | None = None
    """Reads documents attached to chat messages (docs/documents.md); ``None``: they are
    forwarded as sent."""
