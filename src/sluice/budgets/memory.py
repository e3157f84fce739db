"""The budget store for one process: spend in a dict, one lock around each operation."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sluice.budgets import plan
from sluice.budgets.base import BudgetReservation
from sluice.budgets.errors import BudgetExceeded
from sluice.budgets.spec import BudgetSpec, Period, period_bounds
from sluice.clock import Clock


@dataclass(slots=True)
class _Entry:
    start: int
    spent: int = 0
    reserved: int = 0


class MemoryBudgets:
    """:class:`~sluice.budgets.base.BudgetStore` for a single process.

    One entry per (scope, period) for the current period; the first operation in a new
    period replaces it, which is the reset. Each operation runs under one
    ``threading.Lock`` without awaiting, so it is atomic across every budget.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._ids = itertools.count(1)

    def _entry(self, scope: str, period: str, start: int) -> _Entry:
        entry = self._entries.get((scope, period))
        if entry is None or entry.start < start:
            entry = self._entries[(scope, period)] = _Entry(start)
        return entry

    async def reserve(
        self, checks: Sequence[tuple[str, BudgetSpec]], amount_micros: int
    ) -> BudgetReservation:
        if amount_micros < 0:
            raise ValueError("amount_micros must be zero or more")
        now = self._clock.now()
        holds = plan.holds_for(checks, now)
        with self._lock:
            entries = [self._entry(h.scope, h.period, h.start) for h, _ in holds]
            refused = [
                plan.exhausted(h, limit=limit, spent=e.spent, reserved=e.reserved)
                for (h, limit), e in zip(holds, entries, strict=True)
                if not plan.fits(
                    limit=limit, spent=e.spent, reserved=e.reserved, amount=amount_micros
                )
            ]
            if not refused:
                for entry in entries:
                    entry.reserved += amount_micros
        if refused:
            raise BudgetExceeded(tuple(refused), amount_micros=amount_micros, now=now)
        return BudgetReservation(
            id=str(next(self._ids)),
            amount_micros=amount_micros,
            holds=tuple(h for h, _ in holds),
        )

    def _undo(self, reservation: BudgetReservation, actual_micros: int) -> None:
        with self._lock:
            for hold in reservation.holds:
                entry = self._entries.get((hold.scope, hold.period))
                if entry is None or entry.start != hold.start:
                    continue  # that period is over; its spend no longer limits anything
                entry.reserved = max(0, entry.reserved - reservation.amount_micros)
                entry.spent += actual_micros

    async def settle(self, reservation: BudgetReservation, actual_micros: int) -> None:
        if reservation.close():
            self._undo(reservation, max(0, actual_micros))

    async def release(self, reservation: BudgetReservation) -> None:
        if reservation.close():
            self._undo(reservation, 0)

    async def spent(self, scope: str, spec: BudgetSpec) -> int:
        start, _ = period_bounds(spec.period, self._clock.now())
        with self._lock:
            entry = self._entries.get((scope, spec.period))
            return entry.spent if entry is not None and entry.start == start else 0

    async def load(self, scope: str, period: Period, *, start: int, spent_micros: int) -> None:
        current, _ = period_bounds(period, self._clock.now())
        if start != current:
            return
        with self._lock:
            entry = self._entry(scope, period, start)
            entry.spent = max(entry.spent, spent_micros)
