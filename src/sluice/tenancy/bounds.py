"""The bounds of everything an admin sets, checked in one place.

The admin API's schemas declare the same bounds (so they show in its OpenAPI document), and
the tenancy service checks them again before anything is written, so the admin API, the
console and the CLI refuse the same input with a ``BadRequest`` naming the field
(``limits.rpm``, ``limits.models.gpt-4o.tpm_input``, ``budget.usd``, ``expires_at``, ...).

Only what a request changes is checked: a value stored by an older version that is out of
bounds does not stop an unrelated change (revoking a key, disabling a user).
The table of bounds is in ``docs/governance.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from sluice.budgets.spec import BUDGET_USD_MAX, PERIODS, BudgetSettings
from sluice.errors import BadRequest
from sluice.limits.settings import LimitSettings
from sluice.limits.spec import LIMIT_MAX
from sluice.tenancy.model import Governance
from sluice.types import Unreadable

NAME_MAX_CHARS = 200
"""Names of organisations, teams, users, service accounts, keys; model names."""
ID_MAX_CHARS = 64
MODEL_NAMES_MAX = 500
"""Entries of ``models``, ``models_exclude`` and ``limits.models``."""
MCP_NAMES_MAX = 500
"""Entries of ``mcp_servers``, ``mcp_servers_exclude``, ``mcp_tools``, ``mcp_tools_exclude``."""
MCP_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""An MCP server name, as ``sluice.config.mcp.SERVER_NAME`` (a test keeps them equal); a
name no server has yet is accepted (servers can be added later)."""
MCP_TOOL_PATTERN = re.compile(r"^[a-z0-9*][a-z0-9_*-]{0,63}/[^\x00-\x1f\x7f\s]{1,200}$")
"""``server/tool``: a server name (``*`` allowed), a slash, a tool name or pattern (``*``
allowed; no spaces or control characters)."""
MAX_KEYS_MAX = 10_000
"""The largest per-user cap on personal keys."""
METADATA_ENTRIES_MAX = 64
METADATA_KEY_MAX_CHARS = 64
METADATA_VALUE_MAX_CHARS = 500
EXPIRY_MAX_S = 100 * 365 * 86_400
"""How far ahead a key's expiry may be (about 100 years)."""


def _is_count(value: Any, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def check_count(value: Any, *, param: str, maximum: int) -> None:
    if value is not None and not _is_count(value, maximum):
        raise BadRequest(f"{param} must be a whole number from 0 to {maximum}", param=param)


def _check_limit_values(limits: LimitSettings, *, prefix: str) -> None:
    for name, value in limits.items():
        check_count(value, param=f"{prefix}.{name}", maximum=LIMIT_MAX)


def check_limits(limits: LimitSettings | Unreadable | None) -> None:
    """Every limit a whole number from 0 to ``LIMIT_MAX`` (``None``: no limit)."""
    if limits is None:
        return
    if isinstance(limits, Unreadable):
        raise BadRequest(f"limits cannot be read: {limits.reason}", param="limits")
    _check_limit_values(limits, prefix="limits")
    if len(limits.models) > MODEL_NAMES_MAX:
        raise BadRequest(
            f"limits.models must map at most {MODEL_NAMES_MAX} model names to limits",
            param="limits.models",
        )
    for model, values in limits.models.items():
        check_name(model, param="limits.models")
        if values.models:
            raise BadRequest(
                f"limits.models.{model}.models is not a limit",
                param=f"limits.models.{model}.models",
            )
        if values.mcp_rpm is not None:
            raise BadRequest(
                f"limits.models.{model}.mcp_rpm is not a per-model limit",
                param=f"limits.models.{model}.mcp_rpm",
            )
        _check_limit_values(values, prefix=f"limits.models.{model}")


def check_budget(budget: BudgetSettings | Unreadable | None) -> None:
    """``usd`` a finite number from 0 to ``BUDGET_USD_MAX``, ``period`` a known period."""
    if budget is None:
        return
    if isinstance(budget, Unreadable):
        raise BadRequest(f"budget cannot be read: {budget.reason}", param="budget")
    usd = budget.usd
    if (
        isinstance(usd, bool)
        or not isinstance(usd, int | float)
        or not math.isfinite(usd)
        or not 0 <= usd <= BUDGET_USD_MAX
    ):
        raise BadRequest(
            f"budget.usd must be an amount from 0 to {BUDGET_USD_MAX}", param="budget.usd"
        )
    if budget.period not in PERIODS:
        raise BadRequest(
            f"budget.period must be one of {', '.join(PERIODS)}", param="budget.period"
        )


def check_name(value: Any, *, param: str, max_chars: int = NAME_MAX_CHARS) -> None:
    """1 to ``max_chars`` characters, no NUL (which PostgreSQL refuses to store)."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars or "\x00" in value:
        raise BadRequest(f"{param} must have 1 to {max_chars} characters (and no NUL)", param=param)


EMAIL = re.compile(r"[^@\s\x00]+@[^@\s\x00]+")
"""An email address as people type them: something, one ``@``, something, no spaces."""


def check_email(value: Any, *, param: str = "email") -> None:
    """An email address of at most 320 characters (the API, the console and the CLI)."""
    check_name(value, param=param, max_chars=320)
    if not EMAIL.fullmatch(value):
        raise BadRequest(f"{param} must be an email address (name@domain)", param=param)


def _check_models(names: tuple[str, ...] | None, *, param: str) -> None:
    if names is None:
        return
    if len(names) > MODEL_NAMES_MAX:
        raise BadRequest(f"{param} may list at most {MODEL_NAMES_MAX} models", param=param)
    for name in names:
        check_name(name, param=param)


def _check_mcp(names: tuple[str, ...] | None, *, param: str, pattern: re.Pattern[str]) -> None:
    if names is None:
        return
    if len(names) > MCP_NAMES_MAX:
        raise BadRequest(f"{param} may list at most {MCP_NAMES_MAX} entries", param=param)
    for name in names:
        if not isinstance(name, str) or not pattern.fullmatch(name):
            what = "server names" if pattern is MCP_SERVER_NAME else "server/tool patterns"
            raise BadRequest(
                f"{param} must list {what}; {str(name)[:80]!r} is not one", param=param
            )


def check_governance(gov: Governance, *, before: Governance | None = None) -> None:
    """The bounds of every field of ``gov`` that differs from ``before``."""
    old = before or Governance()
    if gov.limits != old.limits:
        check_limits(gov.limits)
    if gov.budget != old.budget:
        check_budget(gov.budget)
    if gov.models != old.models:
        _check_models(gov.models, param="models")
    if gov.models_exclude != old.models_exclude:
        _check_models(gov.models_exclude, param="models_exclude")
    for name, pattern in (
        ("mcp_servers", MCP_SERVER_NAME),
        ("mcp_servers_exclude", MCP_SERVER_NAME),
        ("mcp_tools", MCP_TOOL_PATTERN),
        ("mcp_tools_exclude", MCP_TOOL_PATTERN),
    ):
        if getattr(gov, name) != getattr(old, name):
            _check_mcp(getattr(gov, name), param=name, pattern=pattern)


def check_expiry(expires_at: float | None, *, now: float) -> None:
    """A key's expiry is in the future, and not absurdly far (``EXPIRY_MAX_S``)."""
    if expires_at is None:
        return
    if not math.isfinite(expires_at) or expires_at <= now:
        raise BadRequest("expires_at must be in the future", param="expires_at")
    if expires_at > now + EXPIRY_MAX_S:
        raise BadRequest("expires_at must be within 100 years", param="expires_at")


def check_metadata(metadata: Mapping[str, Any]) -> None:
    if len(metadata) > METADATA_ENTRIES_MAX:
        raise BadRequest(
            f"metadata may have at most {METADATA_ENTRIES_MAX} entries", param="metadata"
        )
    for key, value in metadata.items():
        check_name(key, param="metadata", max_chars=METADATA_KEY_MAX_CHARS)
        if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX_CHARS or "\x00" in value:
            raise BadRequest(
                f"metadata.{key} must be text of at most {METADATA_VALUE_MAX_CHARS} characters",
                param=f"metadata.{key}",
            )
