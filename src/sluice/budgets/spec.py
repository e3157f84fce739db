"""A budget: how many US dollars a scope may spend per period, and the periods' bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, get_args

from sluice.types import FieldError, Unreadable

Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[str, ...] = get_args(Period)
MICROS_PER_USD = 1_000_000
BUDGET_USD_MAX = 1_000_000_000
"""The largest budget in US dollars (10^15 micro-dollars: exact in the doubles Redis' Lua
scripts count with, and well inside a signed 64-bit integer)."""


def usd_to_micros(usd: float | int | str | Decimal) -> int:
    """US dollars to integer micro-dollars, rounding half up (``0.1`` is exactly 100 000)."""
    return int((Decimal(str(usd)) * MICROS_PER_USD).to_integral_value(ROUND_HALF_UP))


def format_usd(micros: int) -> str:
    """``$12.50``, ``$0.000125``: cents always, more digits only when they are not zero."""
    text = f"{Decimal(micros).scaleb(-6):.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A spending cap for one scope. ``usd`` is converted once to ``limit_micros``.

    Periods are calendar periods in UTC and reset by themselves: ``day`` from midnight,
    ``week`` from Monday midnight (ISO weeks), ``month`` from the first, ``total`` never.
    A budget of 0 refuses every request.
    """

    usd: float
    period: Period = "month"
    limit_micros: int = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.usd, bool) or not isinstance(self.usd, int | float | Decimal):
            raise ValueError(f"usd must be a number, not {self.usd!r}")
        if not 0 <= self.usd <= BUDGET_USD_MAX:
            raise ValueError(
                f"usd must be zero or more and at most {BUDGET_USD_MAX}, not {self.usd!r}"
            )
        if self.period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {self.period!r}")
        object.__setattr__(self, "limit_micros", usd_to_micros(self.usd))


def period_bounds(period: Period, now: float) -> tuple[int, int | None]:
    """The period containing ``now`` as epoch seconds ``[start, end)``; ``total`` is
    ``(0, None)``."""
    if period == "total":
        return 0, None
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return int(start.timestamp()), int(end.timestamp())


def describe_reset(end: int | None) -> str:
    if end is None:
        return "never resets"
    return "resets " + datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """The budget one level (organisation, team, user, key) sets, as stored and shown.

    :meth:`spec` turns it into the :class:`BudgetSpec` the budget store checks (once per
    key-cache fill). The stored form keeps amounts above :data:`BUDGET_USD_MAX` that older
    versions accepted; the check caps them there.
    """

    usd: float
    """US dollars per period, as stored (an integer stays an integer)."""
    period: Period = "month"

    @classmethod
    def from_json(cls, data: Any) -> BudgetSettings:
        """Read the stored (or posted) JSON object; :class:`~sluice.types.FieldError` names the
        bad field. Only the types are checked here; the bounds are ``sluice.tenancy.bounds``."""
        if not isinstance(data, Mapping):
            raise FieldError("budget", f"must be an object, not {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in ("usd", "period"))
        if unknown:
            raise FieldError(f"budget.{unknown[0]}", "is not a budget field")
        usd = data.get("usd")
        if isinstance(usd, bool) or not isinstance(usd, int | float):
            raise FieldError("budget.usd", f"must be a number, not {usd!r}")
        period = data.get("period", "month")
        if period not in PERIODS:
            raise FieldError("budget.period", f"must be one of {', '.join(PERIODS)}")
        return cls(usd=usd, period=period)

    def to_json(self) -> dict[str, Any]:
        return {"usd": self.usd, "period": self.period}

    def spec(self) -> BudgetSpec:
        """What the budget store checks; ``ValueError`` for a negative stored amount."""
        return BudgetSpec(usd=min(float(self.usd), BUDGET_USD_MAX), period=self.period)


def stored_budget(raw: Any) -> BudgetSettings | Unreadable | None:
    """A level's budget as read from a row: ``None`` when unset, :class:`Unreadable` (kept as
    stored) when this version cannot read it. An empty object meant "no budget" before, and
    still does."""
    if raw is None or raw == {}:
        return None
    try:
        return BudgetSettings.from_json(raw)
    except ValueError as exc:
        return Unreadable(raw, str(exc))
