"""Response bodies of the analytics routes."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from pydantic import BaseModel

from sluice.analytics.cache import CacheSums
from sluice.analytics.model import Metrics
from sluice.usage.event import UsageEvent


class MetricsOut(BaseModel):
    requests: int
    errors: int
    error_rate: float
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micros: int
    cost_usd: float
    latency_ms_mean: float | None
    latency_ms_p50: float | None
    """Estimated from the rollups' latency histogram (about ±19 %)."""
    latency_ms_p95: float | None
    ttft_ms_mean: float | None

    @classmethod
    def of(cls, m: Metrics) -> MetricsOut:
        data = asdict(m)
        data.pop("extra")
        return cls(**data)


class SummaryOut(MetricsOut):
    start: datetime
    end: datetime


class GroupOut(MetricsOut):
    value: str | None
    """The model, provider, org, team, user or key id; ``null`` for usage without one."""


class BreakdownOut(BaseModel):
    start: datetime
    end: datetime
    by: str
    data: list[GroupOut]
    truncated: bool
    """More groups exist than ``limit``."""


class PointOut(MetricsOut):
    bucket: datetime


class SeriesOut(BaseModel):
    start: datetime
    end: datetime
    interval: str
    data: list[PointOut]


class RequestOut(BaseModel):
    request_id: str
    created_at: datetime
    endpoint: str
    status: int
    error_kind: str | None
    error_message: str | None
    model: str | None
    provider: str | None
    deployment: str | None
    upstream_model: str | None
    org_id: str | None
    team_id: str | None
    user_id: str | None
    key_id: str | None
    end_user: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    tokens_estimated: bool
    cost_micros: int | None
    latency_ms: float
    ttft_ms: float | None
    upstream_ms: float
    """Time spent waiting on upstreams (every attempt); the rest of ``latency_ms`` is the
    gateway's own time, retry back-off included."""
    trace_id: str | None
    streamed: bool
    partial: bool
    attempts: int
    attempt_errors: list[str] | None
    mcp_server: str | None = None
    """MCP rows (``endpoint`` ``mcp.tool`` or ``mcp.session``): the server."""
    mcp_tool: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    rpc_error: int | None = None
    """MCP rows: the JSON-RPC error code answered (``null``: success)."""
    batch_id: str | None = None
    """The batch whose line this request was (``null``: a live request)."""

    @classmethod
    def of(cls, e: UsageEvent) -> RequestOut:
        data = {name: getattr(e, name) for name in cls.model_fields if name != "created_at"}
        return cls(created_at=datetime.fromtimestamp(e.created_at, UTC), **data)


class RequestPage(BaseModel):
    data: list[RequestOut]
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; ``null`` on the last page."""


class BodyOut(BaseModel):
    request: str
    response: str
    truncated: bool


class RequestDetail(RequestOut):
    body: BodyOut | None = None
    """The logged request and response bodies (redacted) when body logging covered it."""


class McpToolOut(BaseModel):
    server: str
    tool: str
    calls: int
    errors: int
    """Calls answered with an HTTP error status or a JSON-RPC error."""
    error_rate: float
    latency_ms_mean: float | None
    latency_ms_p50: float | None
    """Estimated from a latency histogram (about ±19 %)."""
    latency_ms_p95: float | None
    bytes_in: int
    bytes_out: int


class McpToolsOut(BaseModel):
    start: datetime
    end: datetime
    data: list[McpToolOut]
    """One row per server and tool, the most called first."""


class CacheRowOut(BaseModel):
    model: str
    team_id: str | None
    requests: int
    """Requests the cache saw (hits, misses, refreshes and bypasses)."""
    hits: int
    misses: int
    bypasses: int
    hit_rate: float
    """Hits among the requests that looked the cache up."""
    saved_usd: float
    """What the hits would have cost."""
    cost_usd: float
    """What the other requests cost."""

    @classmethod
    def of(cls, s: CacheSums) -> CacheRowOut:
        return cls(
            model=s.model,
            team_id=s.team_id,
            requests=s.requests,
            hits=s.hits,
            misses=s.misses,
            bypasses=s.bypasses,
            hit_rate=round(s.hit_rate, 4),
            saved_usd=s.saved_micros / 1e6,
            cost_usd=s.cost_micros / 1e6,
        )


class CacheUsageOut(BaseModel):
    start: datetime
    end: datetime
    data: list[CacheRowOut]
    """One row per model and team, the most requested first."""


class UnitRowOut(BaseModel):
    endpoint: str
    """``audio.speech``, ``audio.transcriptions``, ``images.generations``, ``rerank``, ..."""
    model: str
    unit_kind: str
    """``audio_seconds``, ``characters``, ``images`` or ``searches``."""
    requests: int
    units: float
    """Billed units of that kind, added up."""
    cost_usd: float


class UnitUsageOut(BaseModel):
    start: datetime
    end: datetime
    data: list[UnitRowOut]
    """One row per endpoint, model and unit, the most costly first."""
