"""Budget thresholds: compare each budget's spend in its current period with the configured
percentages and record an alert the first time each one is reached."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sluice.alerts.model import Alert, AlertRepository
from sluice.auth.principal import Principal
from sluice.budgets.base import BudgetStore
from sluice.budgets.spec import PERIODS, BudgetSpec, describe_reset, format_usd, period_bounds
from sluice.clock import Clock

YIELD_EVERY = 200
"""Budgets checked between two yields to the event loop (a memory store never awaits)."""
_ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly", "total": "total"}


@dataclass(frozen=True, slots=True)
class BudgetOwner:
    """One configured budget and where its scope sits (who may see its alerts)."""

    scope: str
    spec: BudgetSpec
    org_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None


def owners_of(principals: Iterable[Principal]) -> list[BudgetOwner]:
    """Every distinct budget of the cached principals, each with its org, team and user: a
    key's own budget belongs to the key's user, team and org; a user's to the user and the
    team and org of the first key seen of theirs; a team's to its org."""
    seen: dict[str, BudgetOwner] = {}
    for p in principals:
        for scope, spec in p.budget_checks:
            if scope in seen:
                continue
            kind, _, ident = scope.partition(":")
            if kind == "org":
                owner = BudgetOwner(scope, spec, org_id=ident)
            elif kind == "team":
                owner = BudgetOwner(scope, spec, org_id=p.org_id, team_id=ident)
            elif kind == "user":
                owner = BudgetOwner(scope, spec, p.org_id, p.team_id, ident)
            else:
                owner = BudgetOwner(scope, spec, p.org_id, p.team_id, p.user_id)
            seen[scope] = owner
    return list(seen.values())


def budget_key(scope: str, period: str, start: int, pct: int) -> str:
    return f"budget:{scope}:{period}:{start}:{pct}"


class BudgetWatch:
    """Finds budgets that reached a threshold and records one alert per
    (scope, period start, threshold), whichever replica sees it first.

    A check reads each budget's settled spend from the budget store (shared through Redis
    between replicas) and writes only when a threshold is newly reached; what this process
    already recorded or saw recorded is remembered, so a steady state costs no database
    round trip. A budget of 0 has no thresholds (it refuses every request from the start).
    """

    def __init__(
        self,
        repo: AlertRepository,
        budgets: BudgetStore,
        owners: Callable[[], Sequence[BudgetOwner]],
        *,
        thresholds: Sequence[int],
        clock: Clock,
    ) -> None:
        self._repo = repo
        self._budgets = budgets
        self._owners = owners
        self._thresholds = sorted(thresholds)
        self._clock = clock
        self._known: dict[tuple[str, str], tuple[int, set[int]]] = {}
        """(scope, period) → (period start, thresholds known to be recorded)."""

    async def check(self) -> list[Alert]:
        """One pass over every budget; the alerts this call recorded, to be delivered."""
        fired: list[Alert] = []
        now = self._clock.now()
        bounds = {p: period_bounds(p, now) for p in PERIODS}  # type: ignore[arg-type]
        for n, owner in enumerate(self._owners(), 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # thousands of budgets: let requests run in between
            limit = owner.spec.limit_micros
            if limit <= 0 or not self._thresholds:
                continue
            start, end = bounds[owner.spec.period]
            slot = (owner.scope, owner.spec.period)
            known_start, known = self._known.get(slot, (start, set()))
            if known_start != start:
                known = set()
            self._known[slot] = (start, known)
            if all(pct in known for pct in self._thresholds):
                continue
            spent = await self._budgets.spent(owner.scope, owner.spec)
            reached = [p for p in self._thresholds if spent * 100 >= p * limit and p not in known]
            # Highest first: when a jump crosses several thresholds at once, only the
            # highest is delivered; the lower ones are recorded as superseded.
            for rank, pct in enumerate(sorted(reached, reverse=True)):
                alert = self._alert(
                    owner, start=start, end=end, pct=pct, spent=spent, now=now, superseded=rank > 0
                )
                stored = await self._repo.insert_if_absent(alert)
                known.add(pct)
                if stored is not None and rank == 0:
                    fired.append(stored)
        return fired

    def _alert(
        self,
        owner: BudgetOwner,
        *,
        start: int,
        end: int | None,
        pct: int,
        spent: int,
        now: float,
        superseded: bool,
    ) -> Alert:
        spec = owner.spec
        message = (
            f"{owner.scope} reached {pct}% of its {_ADJECTIVE[spec.period]} budget: "
            f"{format_usd(spent)} of {format_usd(spec.limit_micros)} spent "
            f"({describe_reset(end)})"
        )
        return Alert(
            kind="budget",
            dedupe_key=budget_key(owner.scope, spec.period, start, pct),
            message=message,
            created_at=now,
            scope=owner.scope,
            org_id=owner.org_id,
            team_id=owner.team_id,
            user_id=owner.user_id,
            period=spec.period,
            period_start=start,
            threshold_pct=pct,
            limit_micros=spec.limit_micros,
            spent_micros=spent,
            details={"period_end": end},
            delivery="superseded" if superseded else "pending",
        )
