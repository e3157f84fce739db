"""Budgets in US dollars per scope and calendar period, enforced by reserving a request's
estimated cost before the call and settling its actual cost after it.

Backends: :mod:`sluice.budgets.memory` (one process) and :mod:`sluice.budgets.redis`
(replicas); only the composition root imports them. Prices: :mod:`sluice.budgets.pricing`.
Semantics: ``docs/limits-and-budgets.md``.
"""

from sluice.budgets.base import BudgetHold, BudgetReservation, BudgetStore, Exhausted
from sluice.budgets.errors import BUDGET_EXCEEDED, BudgetExceeded
from sluice.budgets.pricing import Cost, PriceOverride, Pricer, Rates
from sluice.budgets.seed import SpentSince, seed_budgets
from sluice.budgets.spec import (
    PERIODS,
    BudgetSpec,
    Period,
    format_usd,
    period_bounds,
    usd_to_micros,
)

__all__ = [
    "BUDGET_EXCEEDED",
    "PERIODS",
    "BudgetExceeded",
    "BudgetHold",
    "BudgetReservation",
    "BudgetSpec",
    "BudgetStore",
    "Cost",
    "Exhausted",
    "Period",
    "PriceOverride",
    "Pricer",
    "Rates",
    "SpentSince",
    "format_usd",
    "period_bounds",
    "seed_budgets",
    "usd_to_micros",
]
