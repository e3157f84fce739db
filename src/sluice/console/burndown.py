"""Budget burn-down: cumulative spend over the budget's current period against its limit,
with a straight-line projection to the period's end.

Spend comes from the same rollups as the rest of the Usage page (through
:class:`~sluice.analytics.service.Analytics`), so a burn-down and the cost cards agree.
Which budgets a scope shows: the scope object's own, and those one level beneath it
(own usage: the person and their keys; a team: the team, its members and its keys; an
organisation: it and its teams; everything: the global budget and each organisation's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sluice.analytics.model import Narrow, Visibility, Window
from sluice.analytics.service import Analytics
from sluice.auth.keys import KeyRecord
from sluice.budgets.spec import BudgetSettings, Period, period_bounds, usd_to_micros
from sluice.console.charts import Series, TimeChart, bucket_labels, cumulative
from sluice.console.usage_scope import ScopeChoice
from sluice.tenancy.resolve import DirectoryIndex
from sluice.types import Unreadable
from sluice.usage.rollup import DAY_S, HOUR_S

MAX_BURNDOWNS = 8
TOTAL_DAYS_SHOWN = 30
"""A ``total`` budget never resets: its chart shows the last 30 days on top of what was
spent before them."""


@dataclass(frozen=True, slots=True)
class Budget:
    level: str
    """``key``, ``user``, ``team``, ``org`` or ``global``."""
    ident: str | None
    name: str
    usd: float
    period: Period

    @property
    def narrow(self) -> Narrow:
        if self.level == "global" or self.ident is None:
            return Narrow()
        return Narrow(**{f"{self.level}_id": self.ident})


@dataclass(frozen=True, slots=True)
class Burn:
    budget: Budget
    start: int
    end: int | None
    limit_micros: int
    spent_micros: int
    projected_micros: int | None
    """Spend at the period's end if it goes on at the period's average rate so far."""
    runs_out_at: float | None
    """When the projection crosses the limit, if that is before the period ends."""
    chart: TimeChart

    @property
    def used(self) -> float:
        return self.spent_micros / self.limit_micros if self.limit_micros else 1.0


def _budget(
    level: str, ident: str | None, name: str, settings: BudgetSettings | Unreadable | None
) -> Budget | None:
    if not isinstance(settings, BudgetSettings):
        return None
    return Budget(level, ident, name, float(settings.usd), settings.period)


def budgets_for(
    scope: ScopeChoice,
    index: DirectoryIndex,
    keys: list[KeyRecord],
    global_budget: BudgetSettings | Unreadable | None,
) -> list[Budget]:
    """The budgets the scope shows (``keys``: those the viewer may see)."""
    found: list[Budget | None] = []
    ident = scope.ident
    if scope.kind == "global":
        found.append(_budget("global", None, "Global", global_budget))
        found += [
            _budget("org", o.id, f"Organisation {o.name}", o.governance.budget)
            for o in sorted(index.orgs.values(), key=lambda o: o.name)
        ]
    elif scope.kind == "org" and ident in index.orgs:
        org = index.orgs[ident]
        found.append(_budget("org", org.id, f"Organisation {org.name}", org.governance.budget))
        found += [
            _budget("team", t.id, f"Team {t.name}", t.governance.budget)
            for t in sorted(index.teams.values(), key=lambda t: t.name)
            if t.org_id == org.id
        ]
    elif scope.kind == "team" and ident in index.teams:
        team = index.teams[ident]
        found.append(_budget("team", team.id, f"Team {team.name}", team.governance.budget))
        members = [
            index.users[uid]
            for uid, ms in index.memberships.items()
            if uid in index.users and any(m.team_id == team.id for m in ms)
        ]
        found += [
            _budget("user", u.id, u.email, u.governance.budget)
            for u in sorted(members, key=lambda u: u.email)
        ]
        found += [
            _budget("key", k.id, f"Key {k.name}", k.budget) for k in keys if k.team_id == ident
        ]
    elif scope.kind == "own" and ident in index.users:
        user = index.users[ident]
        found.append(_budget("user", user.id, "You", user.governance.budget))
        found += [
            _budget("key", k.id, f"Key {k.name}", k.budget) for k in keys if k.user_id == ident
        ]
    return [b for b in found if b is not None][:MAX_BURNDOWNS]


async def burn(analytics: Analytics, budget: Budget, *, v: Visibility, now: float) -> Burn:
    """The budget's current period: actual cumulative spend up to now, the limit line, and
    the projection from now to the period's end."""
    start, end = period_bounds(budget.period, now)
    baseline = 0
    if end is None:  # total: the last days, on top of everything before them
        start = (int(now) // DAY_S - TOTAL_DAYS_SHOWN + 1) * DAY_S
        before = await analytics.summary(Window(0, start), v, budget.narrow)
        baseline = before.cost_micros
    interval = "hour" if budget.period == "day" else "day"
    width = HOUR_S if interval == "hour" else DAY_S
    upto = max(math.ceil(now / HOUR_S) * HOUR_S, start + HOUR_S)
    points = await analytics.series(Window(start, upto), v, budget.narrow, interval=interval)
    actual = cumulative([float(m.cost_micros) for _, m in points], float(baseline))
    spent = int(actual[-1]) if actual else baseline
    axis_end = end if end is not None else upto
    buckets = list(range(start, axis_end, width)) or [start]
    limit = usd_to_micros(budget.usd)

    values: list[float | None] = [*actual, *([None] * (len(buckets) - len(actual)))]
    projection: list[float | None] = [None] * len(buckets)
    projected: int | None = None
    runs_out: float | None = None
    if end is not None and now > start:
        rate = spent / (now - start)
        projected = round(spent + rate * (end - now))
        if len(actual) < len(buckets):
            projection[len(actual) - 1] = float(spent)
            for i in range(len(actual), len(buckets)):
                projection[i] = spent + rate * (min(buckets[i] + width, end) - now)
        if rate > 0 and spent < limit:
            at = now + (limit - spent) / rate
            runs_out = at if at < end else None
    labels, ticks = bucket_labels(buckets, interval)
    series = [
        Series("Spent", tuple(values), "area"),
        Series("Budget", (float(limit),) * len(buckets), "dash"),
    ]
    if any(p is not None for p in projection):
        series.append(Series("Projected", tuple(projection), "line"))
    chart = TimeChart(
        id=f"burn-{budget.level}-{budget.ident or 'global'}",
        title=f"{budget.name}: spend this {budget.period} against ${budget.usd:g}",
        labels=labels,
        ticks=ticks,
        series=tuple(series),
        unit="micros",
    )
    return Burn(budget, start, end, limit, spent, projected, runs_out, chart)


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
