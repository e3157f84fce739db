"""Which budget holds a request needs now, and whether they have room."""

from __future__ import annotations

from collections.abc import Sequence

from sluice.budgets.base import BudgetHold, Exhausted
from sluice.budgets.spec import BudgetSpec, period_bounds


def holds_for(checks: Sequence[tuple[str, BudgetSpec]], now: float) -> list[tuple[BudgetHold, int]]:
    """Each (scope, period) once, in the period containing ``now``, with its limit in
    micro-dollars (the smaller one when a scope has two budgets of the same period)."""
    limits: dict[tuple[str, str], tuple[BudgetHold, int]] = {}
    for scope, spec in checks:
        key = (scope, spec.period)
        held = limits.get(key)
        if held is None:
            start, end = period_bounds(spec.period, now)
            limits[key] = (BudgetHold(scope, spec.period, start, end), spec.limit_micros)
        elif spec.limit_micros < held[1]:
            limits[key] = (held[0], spec.limit_micros)
    return list(limits.values())


def fits(*, limit: int, spent: int, reserved: int, amount: int) -> bool:
    """Room for ``amount`` more; an exhausted budget refuses even a free request."""
    return spent < limit and spent + reserved + amount <= limit


def exhausted(hold: BudgetHold, *, limit: int, spent: int, reserved: int) -> Exhausted:
    return Exhausted(hold.scope, hold.period, limit, spent, reserved, hold.end)
