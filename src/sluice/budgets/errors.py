"""The 429 a request gets when a budget has no room for it."""

from __future__ import annotations

import math

from sluice.budgets.base import Exhausted
from sluice.budgets.spec import describe_reset, format_usd
from sluice.errors import ErrorKind, GatewayError

BUDGET_EXCEEDED = "budget_exceeded"


def _reason(item: Exhausted, now: float) -> str:
    left = max(0, item.limit_micros - item.spent_micros - item.reserved_micros)
    held = (
        f", {format_usd(item.reserved_micros)} held by requests in flight"
        if item.reserved_micros
        else ""
    )
    return (
        f"{item.scope.replace(':', ' ')}'s {item.period} budget: {format_usd(left)} of "
        f"{format_usd(item.limit_micros)} left ({format_usd(item.spent_micros)} spent{held}; "
        f"{describe_reset(item.resets_at)}{_in(item.resets_at, now)})"
    )


def _in(end: int | None, now: float) -> str:
    """`` (in 3 h 20 min)``: how far away a reset is, roughly."""
    if end is None:
        return ""
    minutes = max(1, math.ceil((end - now) / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f", in {days} d {hours} h" if hours else f", in {days} d"
    if hours:
        return f", in {hours} h {minutes} min" if minutes else f", in {hours} h"
    return f", in {minutes} min"


class BudgetExceeded(GatewayError):
    """A budget has no room for the request's estimated cost; nothing was held.

    Status 429 with code ``budget_exceeded``, not 402: see ``docs/limits-and-budgets.md``.
    ``retry_after_s`` is the time until the last of the exhausted budgets resets, or
    ``None`` when one of them is a ``total`` budget (it never resets).
    """

    def __init__(self, exhausted: tuple[Exhausted, ...], *, amount_micros: int, now: float) -> None:
        self.exhausted = exhausted
        resets = [item.resets_at for item in exhausted]
        retry = None if None in resets else max(r for r in resets if r is not None) - now
        super().__init__(
            ErrorKind.POLICY_BUDGET_EXCEEDED,
            f"budget exceeded: this request may cost up to {format_usd(amount_micros)} (its "
            "input and maximum output at the model's price, held until it ends), more than is "
            "left of " + "; ".join(_reason(item, now) for item in exhausted),
            code=BUDGET_EXCEEDED,
            retry_after_s=None if retry is None else float(max(1, math.ceil(retry))),
        )
