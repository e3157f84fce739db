"""What a caller hands the pipeline: an immutable request context.

:class:`Arrival` is what is known before the request's body is read (who, when, which
trace); :class:`RequestContext` adds what the request asks for and where its answer goes.
Both are ``NamedTuple``s: immutable, and cheap to build on the hot path (a frozen dataclass
costs about four times as much per field).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from sluice.auth.principal import Principal
from sluice.observability.tracing import Trace
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.routing.table import ModelEntry
from sluice.types import ProviderRequest


class Arrival(NamedTuple):
    """Who sent a request, when, and under which trace."""

    request_id: str
    created_at: float
    """Epoch seconds when the request arrived."""
    started: float
    """``time.perf_counter()`` when the request arrived (latency, time to first token)."""
    endpoint: str
    """The endpoint's name (``Endpoint.value``: ``chat``, ``messages``, ...)."""
    principal: Principal
    trace: Trace


class RequestContext(NamedTuple):
    """One request as the pipeline serves it (:func:`sluice.pipeline.run.serve`)."""

    arrival: Arrival
    dialect: Dialect
    """The format the client speaks: how the request was read and the answer is written."""
    request: ProviderRequest
    entry: ModelEntry
    """The model the request resolved to (access checked: :func:`sluice.pipeline.access.admit`)."""
    sink: ResponseSink
    """Where the answer goes, errors included."""
    deadline: float
    """``loop.time()`` by which the whole request ends, retries and fallbacks included."""
    base_headers: Headers
    """Headers of every answer (request id, trace id); not changed by the pipeline."""
    forward_headers: Mapping[str, str] | None = None
    """Request headers passed on to a provider that speaks the dialect natively."""
    want_metadata: bool = False
    """The answer carries the ``sluice`` metadata object (header or config opt-in)."""
    sla_ms: int | None = None
    """The caller's latency target (``x-sluice-sla-ms``), for routing policies."""
    request_headers: Sequence[tuple[bytes, bytes]] = ()
    """The request's headers as received (lower-case names); read by the cache stage only
    (``Cache-Control``, ``x-sluice-cache-ttl``), and only when a cache is configured."""
    cache_status: bytes = b"none"
    """The answer's ``x-sluice-cache`` value: ``none`` (no cache configured), set by the
    cache stage to ``miss``, ``store`` or ``bypass`` (``hit`` answers never reach routing)."""
