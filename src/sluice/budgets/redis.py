"""The budget store shared by replicas: one Lua script per operation on one Redis server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sluice.budgets import plan, scripts
from sluice.budgets.base import BudgetHold, BudgetReservation
from sluice.budgets.errors import BudgetExceeded
from sluice.budgets.spec import BudgetSpec, Period, period_bounds
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError
from sluice.ids import random_hex
from sluice.limits.lua import STORE_ERRORS, LuaScript
from sluice.limits.owed import Owed

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("sluice.budgets")

EXPIRY_MARGIN_S = 86_400
"""A period's key outlives the period by a day, for late settles and reports."""


def _unavailable() -> GatewayError:
    return GatewayError(ErrorKind.GATEWAY_UNAVAILABLE, "the budget store (Redis) is unavailable")


class RedisBudgets:
    """:class:`~sluice.budgets.base.BudgetStore` over Redis, shared by every replica.

    Each operation is one Lua script, atomic across all the budgets of a request. Periods
    are computed from the injected clock (a replica whose clock is off by a few seconds
    counts a request made within those seconds of midnight in the neighbouring day); the
    period start is part of the key, so a new period starts from zero by itself.

    Holds are leases: each is recorded with the end of its lease (``lease_s``, above the
    longest request). A reserve that finds no room first frees the holds whose lease ended,
    so money held by a replica that died mid-request comes back after at most ``lease_s``.

    Each call has a ``timeout_s`` deadline. A reserve that misses it or finds Redis down
    fails with ``gateway_unavailable`` (503). A settle or release that fails (or is
    cancelled while it waits) is sent again by :meth:`upkeep` until Redis answers, guarded:
    a budget gets its cost only if that call freed its hold, so a first call that did run
    is not counted twice (a request that held nothing, an estimate of 0, is only logged).
    """

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        *,
        prefix: str = "sluice:budget:",
        lease_s: float = 900.0,
        timeout_s: float = 1.0,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self._lease_ms = int(lease_s * 1000)
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._reserve = LuaScript(redis, scripts.RESERVE, timeout_s=timeout_s)
        self._adjust = LuaScript(redis, scripts.ADJUST, timeout_s=timeout_s)
        self._load = LuaScript(redis, scripts.LOAD, timeout_s=timeout_s)
        self.owed = Owed(what="budget settlements")
        """Settles and releases Redis did not answer, sent again by :meth:`upkeep`."""

    async def upkeep(self) -> None:
        """Send again the settles and releases Redis did not answer, until cancelled. Run it
        as a background task of the process (the lifespan's task group)."""
        await self.owed.run()

    def _key(self, scope: str, period: str, start: int) -> str:
        return f"{self._prefix}{scope}:{period}:{start}"

    def _ttl_ms(self, end: int | None) -> int:
        """Time to keep a period's key, from the injected clock (0: keep it)."""
        if end is None:
            return 0
        return max(1, round((end + EXPIRY_MARGIN_S - self._clock.now()) * 1000))

    def _keys(self, holds: Sequence[BudgetHold]) -> list[str]:
        keys = []
        for hold in holds:
            key = self._key(hold.scope, hold.period, hold.start)
            keys += [key, f"{key}:holds"]
        return keys

    async def reserve(
        self, checks: Sequence[tuple[str, BudgetSpec]], amount_micros: int
    ) -> BudgetReservation:
        if amount_micros < 0:
            raise ValueError("amount_micros must be zero or more")
        now = self._clock.now()
        holds = plan.holds_for(checks, now)
        if not holds:
            return BudgetReservation(id="", amount_micros=amount_micros, holds=())
        rid = random_hex(16)
        args: list[str | int] = [
            amount_micros,
            round(now * 1000),
            self._lease_ms,
            f"{rid}:{amount_micros}",
        ]
        for hold, limit in holds:
            args += [limit, self._ttl_ms(hold.end)]
        try:
            reply = [int(v) for v in await self._reserve(self._keys([h for h, _ in holds]), args)]
        except STORE_ERRORS as exc:
            raise _unavailable() from exc
        if reply[0] != 1:
            refused = []
            for i, (hold, limit) in enumerate(holds):
                spent, reserved = reply[1 + 2 * i], reply[2 + 2 * i]
                if not plan.fits(limit=limit, spent=spent, reserved=reserved, amount=amount_micros):
                    refused.append(
                        plan.exhausted(hold, limit=limit, spent=spent, reserved=reserved)
                    )
            raise BudgetExceeded(tuple(refused), amount_micros=amount_micros, now=now)
        return BudgetReservation(
            id=rid, amount_micros=amount_micros, holds=tuple(h for h, _ in holds)
        )

    async def _undo(self, reservation: BudgetReservation, actual_micros: int) -> None:
        holds = reservation.holds
        if not holds or (reservation.amount_micros == 0 and actual_micros == 0):
            return
        keys = self._keys(holds)
        args: list[str | int] = [
            f"{reservation.id}:{reservation.amount_micros}",
            reservation.amount_micros,
            actual_micros,
            0,
        ]
        args += [self._ttl_ms(h.end) for h in holds]
        # Sent again only while a hold tells whether it ran: guarded, it counts once.
        retried = reservation.amount_micros > 0
        try:
            await self._adjust(keys, args)
        except STORE_ERRORS as exc:
            log.warning(
                "could not settle budget reservation %s (cost %d micro-USD, %s); %s",
                reservation.id,
                actual_micros,
                type(exc).__name__,
                "retrying when Redis answers" if retried else "its cost is not counted",
            )
            if retried:
                self.owed.defer(self._adjust, keys, [*args[:3], 1, *args[4:]])
        except asyncio.CancelledError:
            if retried:
                self.owed.defer(self._adjust, keys, [*args[:3], 1, *args[4:]])
            raise

    async def settle(self, reservation: BudgetReservation, actual_micros: int) -> None:
        if reservation.close():
            await self._undo(reservation, max(0, actual_micros))

    async def release(self, reservation: BudgetReservation) -> None:
        if reservation.close():
            await self._undo(reservation, 0)

    async def spent(self, scope: str, spec: BudgetSpec) -> int:
        start, _ = period_bounds(spec.period, self._clock.now())
        try:
            async with asyncio.timeout(self._timeout_s):
                value: Any = await self._redis.hget(self._key(scope, spec.period, start), "spent")
        except STORE_ERRORS as exc:
            raise _unavailable() from exc
        return int(value or 0)

    async def load(self, scope: str, period: Period, *, start: int, spent_micros: int) -> None:
        _, end = period_bounds(period, start)
        try:
            await self._load([self._key(scope, period, start)], [spent_micros, self._ttl_ms(end)])
        except STORE_ERRORS as exc:
            raise _unavailable() from exc
