"""The 429 a request gets when a budget has no room for it."""

from __future__ import annotations

import math

from sluice.budgets.base import Exhausted
from sluice.budgets.spec import describe_reset, format_usd
from sluice.errors import ErrorKind, GatewayError

BUDGET_EXCEEDED = "budget_exceeded"


def _reason(item: Exhausted) -> str:
    held = f", {format_usd(item.reserved_micros)} in flight" if item.reserved_micros else ""
    return (
        f"{item.scope.replace(':', ' ')} {item.period} budget {format_usd(item.limit_micros)} "
        f"(spent {format_usd(item.spent_micros)}{held}; {describe_reset(item.resets_at)})"
    )


class BudgetExceeded(GatewayError):
    """A budget has no room for the request's estimated cost; nothing was held.

    Status 429 with code ``budget_exceeded``, not 402: see ``docs/limits-and-budgets.md``.
    ``retry_after_s`` is the time until the last of the exhausted budgets resets, or
    ``None`` when one of them is a ``total`` budget (it never resets).
    """

    def __init__(self, exhausted: tuple[Exhausted, ...], *, now: float) -> None:
        self.exhausted = exhausted
        resets = [item.resets_at for item in exhausted]
        retry = None if None in resets else max(r for r in resets if r is not None) - now
        super().__init__(
            ErrorKind.POLICY_BUDGET_EXCEEDED,
            "budget exceeded: " + "; ".join(_reason(item) for item in exhausted),
            code=BUDGET_EXCEEDED,
            retry_after_s=None if retry is None else float(max(1, math.ceil(retry))),
        )
