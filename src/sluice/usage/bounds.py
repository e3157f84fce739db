"""What a usage row can hold: the one place that knows its column limits.

The table definitions (``sluice.storage.sql.tables``) take their string lengths from here,
the request parsers refuse a ``model`` longer than :data:`MODEL_CHARS` (400 naming
``model``), and :func:`bound` makes any event fit its row before it is written: strings cut
to their column, NUL characters and unpaired surrogates (which PostgreSQL cannot store)
replaced, integers clamped to their column's range, non-finite times zeroed. Values that are
only recorded (``user``, upstream error text, ...) are therefore truncated, never refused.
"""

from __future__ import annotations

import math

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
END_USER_CHARS = 200
ERROR_MESSAGE_CHARS = 1000
"""``error_message`` is a text column; this keeps rows small (the text is a summary)."""
ATTEMPT_ERRORS = 50
"""Failed attempts listed on one row (more are counted in ``attempts`` only)."""
ATTEMPT_ERROR_CHARS = 400

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1

_STRINGS: tuple[tuple[str, int], ...] = (
    ("request_id", REQUEST_ID_CHARS),
    ("endpoint", ENDPOINT_CHARS),
    ("key_id", ID_CHARS),
    ("model", MODEL_CHARS),
    ("provider", PROVIDER_CHARS),
    ("deployment", DEPLOYMENT_CHARS),
    ("upstream_model", DEPLOYMENT_CHARS),
    ("error_kind", ERROR_KIND_CHARS),
    ("error_message", ERROR_MESSAGE_CHARS),
    ("end_user", END_USER_CHARS),
    ("user_id", ID_CHARS),
    ("team_id", ID_CHARS),
    ("org_id", ID_CHARS),
    ("trace_id", ID_CHARS),
)
"""Every string field of the row and its limit in characters."""

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


def _time(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def bound(e: UsageEvent) -> UsageEvent:
    """Make ``e`` fit its row (in place; cheap when it fits already) and return it."""
    for name, limit in _STRINGS:
        value = getattr(e, name)
        if value is not None:
            if type(value) is not str:
                value = str(value)
            elif len(value) <= limit and value.isascii() and "\x00" not in value:
                continue
            setattr(e, name, text(value, limit))
    if e.attempt_errors is not None:
        e.attempt_errors = [
            text(str(a), ATTEMPT_ERROR_CHARS) for a in e.attempt_errors[:ATTEMPT_ERRORS]
        ]
    for name in _INT4:
        setattr(e, name, _int(getattr(e, name), INT4_MAX))
    e.status = _int(e.status, 999)
    if e.cost_micros is not None:
        e.cost_micros = _int(e.cost_micros, INT8_MAX)
    e.latency_ms = _time(e.latency_ms)
    e.upstream_ms = _time(e.upstream_ms)
    if e.ttft_ms is not None and not math.isfinite(e.ttft_ms):
        e.ttft_ms = None
    return e
