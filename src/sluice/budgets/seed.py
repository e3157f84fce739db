"""Seeding budget stores from the usage records at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sluice.budgets.base import BudgetStore
from sluice.budgets.spec import BudgetSpec, period_bounds

SpentSince = Callable[[str, int], Awaitable[int]]
"""``(scope, period_start) -> micro-dollars`` spent by the scope since that epoch second,
e.g. the sum of ``cost_micros`` of the scope's usage rows created since then."""


async def seed_budgets(
    store: BudgetStore,
    budgets: Sequence[tuple[str, BudgetSpec]],
    *,
    spent_since: SpentSince,
    now: float,
) -> None:
    """Load the current period's spend of every budget into ``store``.

    Call it before serving (and again whenever a budget is created). Safe to repeat and
    safe with several replicas: the store keeps the larger of its own count and the
    records' (see :meth:`~sluice.budgets.base.BudgetStore.load`).
    """
    done: set[tuple[str, str]] = set()
    for scope, spec in budgets:
        if (scope, spec.period) in done:
            continue
        done.add((scope, spec.period))
        start, _ = period_bounds(spec.period, now)
        spent = await spent_since(scope, start)
        await store.load(scope, spec.period, start=start, spent_micros=spent)
