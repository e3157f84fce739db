"""Form fields to typed values; a bad field raises ``BadRequest`` naming it, which the page
shows next to that field. Field names follow the admin API's (``limits.rpm``,
``budget.usd``) so the tenancy service's ``param`` lands on the same input."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import cast

from starlette.datastructures import FormData

from sluice.budgets.spec import BUDGET_USD_MAX, PERIODS, BudgetSettings, Period
from sluice.errors import BadRequest
from sluice.limits.settings import LIMIT_FIELDS, LimitSettings
from sluice.limits.spec import LIMIT_MAX
from sluice.tenancy.model import Governance

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def text(form: FormData, name: str, *, required: bool = True, max_len: int = 200) -> str:
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if required and not value:
        raise BadRequest(f"{name} is required", param=name)
    if len(value) > max_len:
        raise BadRequest(f"{name} may have at most {max_len} characters", param=name)
    return value


def email(form: FormData, name: str = "email") -> str:
    value = text(form, name, max_len=320)
    if not EMAIL.match(value):
        raise BadRequest("this is not an email address", param=name)
    return value


def count(form: FormData, name: str, *, maximum: int = LIMIT_MAX) -> int | None:
    """A whole number ≥ 0, or ``None`` when left empty."""
    value = text(form, name, required=False, max_len=20)
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > maximum:
        raise BadRequest(f"{name} must be a whole number from 0 to {maximum}", param=name)
    return int(value)


def money(form: FormData, name: str) -> float | None:
    value = text(form, name, required=False, max_len=20)
    if not value:
        return None
    try:
        amount = float(value)
    except ValueError:
        raise BadRequest(f"{name} must be an amount in dollars", param=name) from None
    if not math.isfinite(amount) or not 0 <= amount <= BUDGET_USD_MAX:
        raise BadRequest(f"{name} must be an amount from 0 to {BUDGET_USD_MAX}", param=name)
    return amount


def names(
    form: FormData, name: str, canonical: Callable[[str], str | None]
) -> tuple[str, ...] | None:
    """A comma-separated list of model names; empty: ``None`` (inherit)."""
    value = text(form, name, required=False, max_len=4000)
    if not value:
        return None
    listed = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in listed if canonical(n) is None]
    if unknown:
        raise BadRequest(f"unknown models: {', '.join(unknown)}", param=name)
    return listed


def listed(form: FormData, name: str) -> tuple[str, ...] | None:
    """A comma-separated list (MCP server names, ``server/tool`` patterns); empty: ``None``.
    The tenancy service checks the entries (``sluice.tenancy.bounds``)."""
    value = text(form, name, required=False, max_len=20_000)
    if not value:
        return None
    return tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip())) or None


def governance(
    form: FormData,
    current: Governance,
    canonical: Callable[[str], str | None],
    *,
    mcp: bool = True,
) -> Governance:
    """The limits, budget, model-access and (with ``mcp``) MCP-access fields of a form over
    ``current``. Per-model limits (set through the API) are kept as they are; without
    ``mcp`` so are the MCP lists."""
    given: dict[str, int] = {}
    for name in LIMIT_FIELDS:
        value = count(form, f"limits.{name}")
        if value is not None:
            given[name] = value
    models = current.limits.models if isinstance(current.limits, LimitSettings) else {}
    limits = LimitSettings(**given, models=models)
    usd = money(form, "budget.usd")
    period = text(form, "budget.period", required=False) or "month"
    if period not in PERIODS:
        raise BadRequest(
            f"budget.period must be one of {', '.join(PERIODS)}", param="budget.period"
        )
    gov = Governance(
        models=names(form, "models", canonical),
        models_exclude=names(form, "models_exclude", canonical) or (),
        limits=limits or None,
        budget=BudgetSettings(usd=usd, period=cast(Period, period)) if usd is not None else None,
    )
    if not mcp:
        return replace(
            gov,
            mcp_servers=current.mcp_servers,
            mcp_servers_exclude=current.mcp_servers_exclude,
            mcp_tools=current.mcp_tools,
            mcp_tools_exclude=current.mcp_tools_exclude,
        )
    return replace(
        gov,
        mcp_servers=listed(form, "mcp_servers"),
        mcp_servers_exclude=listed(form, "mcp_servers_exclude") or (),
        mcp_tools=listed(form, "mcp_tools"),
        mcp_tools_exclude=listed(form, "mcp_tools_exclude") or (),
    )


def governance_values(g: Governance) -> dict[str, str]:
    """A level's governance as form values (to fill the form)."""
    limits = dict(g.limits.items()) if isinstance(g.limits, LimitSettings) else {}
    out = {f"limits.{n}": str(limits.get(n, "")) for n in LIMIT_FIELDS}
    budget = g.budget if isinstance(g.budget, BudgetSettings) else None
    out["budget.usd"] = str(budget.usd) if budget else ""
    out["budget.period"] = budget.period if budget else "month"
    out["models"] = ", ".join(g.models) if g.models is not None else ""
    out["models_exclude"] = ", ".join(g.models_exclude)
    out["mcp_servers"] = ", ".join(g.mcp_servers) if g.mcp_servers is not None else ""
    out["mcp_servers_exclude"] = ", ".join(g.mcp_servers_exclude)
    out["mcp_tools"] = ", ".join(g.mcp_tools) if g.mcp_tools is not None else ""
    out["mcp_tools_exclude"] = ", ".join(g.mcp_tools_exclude)
    return out


def submitted(form: FormData) -> dict[str, str]:
    """What was typed, to fill the form again after an error (never passwords)."""
    return {
        k: v
        for k, v in form.items()
        if isinstance(v, str) and "password" not in k and k != "csrf_token"
    }
