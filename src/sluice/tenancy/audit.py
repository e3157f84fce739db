"""Audit entries: what a change looked like before and after, without secrets."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import orjson

_INT64 = 2**63


def _jsonable(value: Any) -> Any:
    """``value`` with integers beyond 64 bits as text: an older version may have stored
    such limits, and JSON encoders refuse them (an audit entry must never fail a revoke)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """``value`` as JSON-like data; limits and budgets in their stored form."""
    to_json = getattr(value, "to_json", None)
    if to_json is not None:
        return to_json()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def snapshot(obj: Any) -> dict[str, Any]:
    """An audit-safe view of a record: no secret hashes."""
    data = _plain(obj)
    for secret in ("key_hash", "previous_hash"):
        if secret in data:
            data[secret] = "***" if data[secret] else None
    return orjson.loads(orjson.dumps(_jsonable(data), default=str))  # type: ignore[no-any-return]
