"""The budget seam: reserve an estimated cost before the call, settle the actual one after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sluice.budgets.spec import BudgetSpec, Period


@dataclass(frozen=True, slots=True)
class BudgetHold:
    """Where a reservation holds money: one scope's budget in one period."""

    scope: str
    period: Period
    start: int
    """Epoch seconds the period started (0 for ``total``)."""
    end: int | None
    """Epoch seconds it ends; ``None`` for ``total``."""


class BudgetReservation:
    """Money held by :meth:`BudgetStore.reserve` for one request until settled or released.

    Closed by the first ``settle`` or ``release``; later calls do nothing.
    """

    __slots__ = ("_closed", "amount_micros", "holds", "id")

    def __init__(self, *, id: str, amount_micros: int, holds: tuple[BudgetHold, ...]) -> None:
        self.id = id
        self.amount_micros = amount_micros
        self.holds = holds
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> bool:
        """Mark closed; ``True`` only for the first call (the caller then undoes the holds)."""
        if self._closed:
            return False
        self._closed = True
        return True

    def __repr__(self) -> str:
        return f"BudgetReservation(id={self.id!r}, amount_micros={self.amount_micros})"


@dataclass(frozen=True, slots=True)
class Exhausted:
    """One budget a request did not fit in, as it stood when the request was refused."""

    scope: str
    period: Period
    limit_micros: int
    spent_micros: int
    """Settled spend of the period."""
    reserved_micros: int
    """Held by requests in flight."""
    resets_at: int | None
    """Epoch seconds of the next period's start; ``None`` for ``total``."""


class BudgetStore(Protocol):
    """Spend per scope and period, shared by a process (memory) or every replica (Redis).

    Amounts are integer micro-dollars. A request fits a budget when the period's settled
    spend plus what requests in flight hold plus its own estimate is at most the limit (and
    the spend alone is below the limit). Every method is safe to call concurrently.
    """

    async def reserve(
        self, checks: Sequence[tuple[str, BudgetSpec]], amount_micros: int
    ) -> BudgetReservation:
        """Atomically hold ``amount_micros`` in every budget, or in none.

        Raises :class:`~sluice.budgets.errors.BudgetExceeded` naming every budget that has
        no room; then nothing was held. The caller must end the reservation with
        :meth:`settle` or :meth:`release` on every exit path (``finally``).
        """
        ...

    async def settle(self, reservation: BudgetReservation, actual_micros: int) -> None:
        """The call was made: drop the hold and add the actual cost to each budget's spend
        in the period the reservation was made in. Idempotent; never raises for a store
        failure (it is logged; the hold expires with its period)."""
        ...

    async def release(self, reservation: BudgetReservation) -> None:
        """The call cost nothing: drop the hold. Idempotent; never raises for a store
        failure."""
        ...

    async def spent(self, scope: str, spec: BudgetSpec) -> int:
        """Settled spend of the scope in the current period of ``spec.period``."""
        ...

    async def load(self, scope: str, period: Period, *, start: int, spent_micros: int) -> None:
        """Seed a period's spend from the usage records (at start-up, so budgets survive
        restarts). The stored spend becomes the larger of what the store has and
        ``spent_micros``: seeding never double-counts spend the store already saw, and never
        lowers it. ``start`` is the period's start (:func:`~sluice.budgets.spec.period_bounds`);
        a period that is no longer current is ignored by the memory store."""
        ...
