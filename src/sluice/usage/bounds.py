"""What a usage row can hold: the one place that knows its column limits.

The table definitions (``sluice.storage.sql.tables``) take their string lengths from here,
the request parsers refuse a ``model`` longer than :data:`MODEL_CHARS` (400 naming
``model``), and :func:`bound` makes any event fit its row before it is written: strings cut
to their column, NUL characters and unpaired surrogates (which PostgreSQL cannot store)
replaced, integers clamped to their column's range, non-finite times zeroed. Values that are
only recorded (``user``, upstream error text, ...) are therefore truncated, never refused.
"""

from __future__ import annotations

from math import isfinite
from operator import attrgetter

from sluice.usage.event import UsageEvent

REQUEST_ID_CHARS = 64
ENDPOINT_CHARS = 32
ID_CHARS = 32
"""Key, user, team and org ids (and the trace id: 32 hex digits)."""
MODEL_CHARS = 200
PROVIDER_CHARS = 100
DEPLOYMENT_CHARS = 300
"""The deployment key and the upstream model name."""
ERROR_KIND_CHARS = 64
MCP_SERVER_CHARS = 64
"""An MCP server's name (``sluice.config.mcp.SERVER_NAME``)."""
MCP_TOOL_CHARS = 200
"""An MCP tool's name on its server (longer names are cut on the row)."""
BATCH_ID_CHARS = 64
CACHE_CHARS = 8
"""The cache column: ``hit``, ``miss``, ``store``, ``bypass`` (made by the gateway)."""
UNIT_KIND_CHARS = 16
"""``unit_kind``: ``audio_seconds`` and the other ``sluice.types.UnitKind`` values."""
"""A batch's id (``batch_`` and a random token), on the rows of its lines."""
END_USER_CHARS = 200
ERROR_MESSAGE_CHARS = 1000
"""``error_message`` is a text column; this keeps rows small (the text is a summary)."""
ATTEMPT_ERRORS = 50
"""Failed attempts listed on one row (more are counted in ``attempts`` only)."""
ATTEMPT_ERROR_CHARS = 400

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1

_STRINGS: tuple[tuple[str, int], ...] = (
    ("model", MODEL_CHARS),
    ("provider", PROVIDER_CHARS),
    ("deployment", DEPLOYMENT_CHARS),
    ("upstream_model", DEPLOYMENT_CHARS),
    ("error_message", ERROR_MESSAGE_CHARS),
    ("end_user", END_USER_CHARS),
    ("mcp_server", MCP_SERVER_CHARS),
    ("mcp_tool", MCP_TOOL_CHARS),
)
"""The string fields that carry text from outside (the caller, an upstream, the config) and
their limits in characters. The others (request, key, user, team, org and trace ids, the
endpoint, the error kind) are made by the gateway in fixed formats that fit their columns;
should one not, the database refuses the row and it goes to the dead letters."""

_INT4 = ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "attempts")


def text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, storable by every dialect."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # unpaired surrogates
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value if len(value) <= limit else value[:limit]


def _int(value: object, high: int) -> int:
    n = value if type(value) is int else _as_int(value)
    return 0 if n < 0 else high if n > high else n


def _as_int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError, OverflowError):
        return 0


_GET_STRINGS = attrgetter(*(name for name, _ in _STRINGS))
_GET_INT4 = attrgetter(*_INT4)


_SHORTEST = min(limit for _, limit in _STRINGS)


def bound(e: UsageEvent) -> UsageEvent:
    """Make ``e`` fit its row (in place; cheap when it fits already) and return it."""
    strings = _GET_STRINGS(e)
    try:  # the common case, in a few C calls: together they fit the shortest limit and
        # are plain ASCII without NUL
        joined = "".join(filter(None, strings))
        plain = len(joined) <= _SHORTEST and joined.isascii() and "\x00" not in joined
    except TypeError:  # not a string
        plain = False
    if not plain:
        for (name, limit), value in zip(_STRINGS, strings, strict=True):
            if value is not None and not (
                type(value) is str
                and len(value) <= limit
                and value.isascii()
                and "\x00" not in value
            ):
                setattr(e, name, text(str(value), limit))
    if e.attempt_errors is not None:
        e.attempt_errors = [
            text(str(a), ATTEMPT_ERROR_CHARS) for a in e.attempt_errors[:ATTEMPT_ERRORS]
        ]
    counts = _GET_INT4(e)
    if min(counts) < 0 or max(counts) > INT4_MAX:
        for name, value in zip(_INT4, counts, strict=True):
            setattr(e, name, _int(value, INT4_MAX))
    if not 0 <= e.status <= 999:
        e.status = _int(e.status, 999)
    if not (0 <= e.bytes_in <= INT8_MAX and 0 <= e.bytes_out <= INT8_MAX):
        e.bytes_in = _int(e.bytes_in, INT8_MAX)
        e.bytes_out = _int(e.bytes_out, INT8_MAX)
    if e.rpc_error is not None and not -INT4_MAX - 1 <= e.rpc_error <= INT4_MAX:
        e.rpc_error = None
    cost = e.cost_micros
    if cost is not None and not 0 <= cost <= INT8_MAX:
        e.cost_micros = _int(cost, INT8_MAX)
    if not isfinite(e.latency_ms + e.upstream_ms):  # both finite (or a sum too large)
        e.latency_ms = e.latency_ms if isfinite(e.latency_ms) else 0.0
        e.upstream_ms = e.upstream_ms if isfinite(e.upstream_ms) else 0.0
    if e.ttft_ms is not None and not isfinite(e.ttft_ms):
        e.ttft_ms = None
    if e.units is not None and not (isfinite(e.units) and e.units >= 0):
        e.units = None
    return e
