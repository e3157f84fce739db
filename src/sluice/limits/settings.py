"""The rate limits one level (organisation, team, user, key) sets, as stored and shown.

:class:`LimitSettings` is what the database row, the admin API and the tenancy rules speak;
:meth:`LimitSettings.spec` turns it into the :class:`~sluice.limits.spec.LimitSpec` the
limiter checks (once per key-cache fill, never per request). The stored form keeps values
above :data:`~sluice.limits.spec.LIMIT_MAX` that older versions accepted; the check caps them
there (they keep meaning "that much").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.limits.spec import LIMIT_MAX, LimitSpec
from sluice.types import FieldError, Unreadable

LIMIT_FIELDS = (
    "rpm",
    "tpm_input",
    "tpm_output",
    "max_parallel",
    "rpd",
    "tpd_input",
    "tpd_output",
    "mcp_rpm",
)
"""The limits a level may set, in the order they are stored and shown."""

MCP_FIELDS = frozenset({"mcp_rpm"})
"""Limits on MCP tool calls: counted in their own buckets (``<scope>:mcp``), never on model
requests, and not settable per model."""


def _count(value: Any, *, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(where, f"must be a whole number, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Rate limits of one level. ``None``: no limit at this level; ``models``: limits per
    public model name (each model gets its own buckets, on top of these)."""

    rpm: int | None = None
    tpm_input: int | None = None
    tpm_output: int | None = None
    max_parallel: int | None = None
    rpd: int | None = None
    tpd_input: int | None = None
    tpd_output: int | None = None
    mcp_rpm: int | None = None
    """MCP tool calls per minute (``sluice.mcp.quota``), apart from model requests."""
    models: Mapping[str, LimitSettings] = field(default_factory=dict)
    """Per-model limits (no ``models`` nor ``mcp_rpm`` of their own)."""

    @classmethod
    def from_json(cls, data: Any) -> LimitSettings:
        """Read the stored (or posted) JSON object; :class:`~sluice.types.FieldError` names
        the bad field (``limits.rpm``, ``limits.models.gpt-4o.tpm_input``). Only the types
        are checked here; the bounds an admin may set are ``sluice.tenancy.bounds``."""
        return _read(data, where="limits", per_model=True)

    def to_json(self) -> dict[str, Any]:
        """The stored form: set limits only, ``models`` only when there are some."""
        out: dict[str, Any] = {n: v for n in LIMIT_FIELDS if (v := getattr(self, n)) is not None}
        if self.models:
            out["models"] = {name: m.to_json() for name, m in self.models.items()}
        return out

    def items(self) -> list[tuple[str, int]]:
        """The limits this level sets, as ``(name, value)`` in the stored order."""
        return [(n, v) for n in LIMIT_FIELDS if (v := getattr(self, n)) is not None]

    def spec(self) -> LimitSpec | None:
        """What the limiter checks for this level (``None``: nothing set), each value capped
        at ``LIMIT_MAX``; ``ValueError`` for a negative stored value."""
        given = {n: min(v, LIMIT_MAX) for n, v in self.items() if n not in MCP_FIELDS}
        return LimitSpec(**given) if given else None

    def mcp_spec(self) -> LimitSpec | None:
        """What the limiter checks for this level's MCP tool calls (``None``: no limit)."""
        if self.mcp_rpm is None:
            return None
        return LimitSpec(rpm=min(self.mcp_rpm, LIMIT_MAX))

    def __bool__(self) -> bool:
        return bool(self.items() or self.models)


def _read(data: Any, *, where: str, per_model: bool) -> LimitSettings:
    if not isinstance(data, Mapping):
        raise FieldError(where, f"must be an object, not {type(data).__name__}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "models" and per_model:
            values["models"] = _models(value)
        elif name in LIMIT_FIELDS and (per_model or name not in MCP_FIELDS):
            if value is not None:
                values[name] = _count(value, where=f"{where}.{name}")
        else:
            raise FieldError(f"{where}.{name}", "is not a limit")
    return LimitSettings(**values)


def _models(value: Any) -> dict[str, LimitSettings]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError("limits.models", "must map model names to limits")
    return {
        str(name): _read(v, where=f"limits.models.{name}", per_model=False)
        for name, v in value.items()
    }


def stored_limits(raw: Any) -> LimitSettings | Unreadable | None:
    """A level's limits as read from a row: ``None`` when unset, :class:`Unreadable` (kept
    as stored) when this version cannot read them."""
    if raw is None:
        return None
    try:
        return LimitSettings.from_json(raw)
    except ValueError as exc:
        return Unreadable(raw, str(exc))
