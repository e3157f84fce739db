"""The usage event: exactly one per authenticated client request."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.usage.bodies import BodyCapture

MCP_TOOL = "mcp.tool"
"""``endpoint`` of the usage row of one MCP ``tools/call``."""
MCP_SESSION = "mcp.session"
"""``endpoint`` of the usage row of one MCP session start."""
MCP_ENDPOINTS = frozenset({MCP_TOOL, MCP_SESSION})
"""MCP rows: no model, no tokens, no cost; left out of the model rollups (analytics read
them from the raw rows, ``sluice.analytics.mcp``)."""


@dataclass(slots=True)
class UsageEvent:
    request_id: str
    created_at: float
    """Epoch seconds when the request arrived."""
    endpoint: str
    key_id: str | None
    model: str | None
    """The model name the client asked for."""
    provider: str | None = None
    deployment: str | None = None
    upstream_model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    tokens_estimated: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int = 200
    error_kind: str | None = None
    error_message: str | None = None
    error_param: str | None = None
    """The request field a refusal names (``param``); for the access log, not stored."""
    streamed: bool = False
    partial: bool = False
    """A stream that failed after its first byte: the tokens are those delivered."""
    end_user: str | None = None
    """The body's ``user`` field."""
    attempts: int = 0
    """Upstream attempts made (0 when refused before any)."""
    attempt_errors: list[str] | None = None
    """``deployment: error kind`` of every failed attempt (never billed)."""
    cost_micros: int | None = None
    """What the answer cost in micro-dollars (``None`` when no upstream call was billed)."""
    user_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    trace_id: str | None = None
    """W3C trace id (32 hex digits): the caller's ``traceparent`` one, else fresh; stored
    on the row and logged on the access line."""
    parent_span: str | None = None
    """The caller's ``traceparent`` parent id, when it sent one."""
    trace_flags: str = "00"
    """The caller's trace flags (``01``: sampled)."""
    upstream_ms: float = 0.0
    """Time spent waiting on upstream calls, every attempt added up (0 on rows written
    before it was recorded, and when no upstream was called)."""
    want_metadata: bool = False
    """The answer carries the ``sluice`` metadata object (header or config opt-in)."""
    bodies: BodyCapture | None = None
    """The request and response bytes, when body logging covers this request (never
    stored in the usage row)."""
    mcp_server: str | None = None
    """MCP rows (``endpoint`` ``mcp.tool`` or ``mcp.session``): the upstream server."""
    mcp_tool: str | None = None
    """MCP tool-call rows: the tool's name on its server (not prefixed)."""
    bytes_in: int = 0
    """MCP rows: bytes of the JSON-RPC request received from the client."""
    bytes_out: int = 0
    """MCP rows: bytes of the JSON-RPC answer sent to the client."""
    rpc_error: int | None = None
    """MCP rows: the JSON-RPC error code answered (``None``: success)."""
    batch_id: str | None = None
    """The batch whose line this request was (``None``: a live request)."""
    cache: str | None = None
    """What the response cache did: ``hit``, ``miss``, ``store``, ``bypass``; ``None``
    when no cache is configured (docs/caching.md)."""
    cost_saved_micros: int | None = None
    """A cache hit: what the stored answer cost when it was made (``cost_micros`` is 0)."""
    units: float | None = None
    """A media request's billed units (``unit_kind``): seconds of audio, characters of
    speech input, images, rerank searches; ``None`` for token-billed requests."""
    unit_kind: str | None = None
    """``audio_seconds``, ``characters``, ``images`` or ``searches`` (``sluice.types.UnitKind``)."""
