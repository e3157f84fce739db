"""The limiter shared by replicas: one Lua script per operation on one Redis server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError
from sluice.ids import random_hex
from sluice.limits import evaluate, scripts
from sluice.limits.base import RateLimitStatus, Reservation, WindowHold
from sluice.limits.errors import LimitExceeded
from sluice.limits.leases import Leases
from sluice.limits.lua import STORE_ERRORS, LuaScript
from sluice.limits.owed import Owed
from sluice.limits.spec import LimitSpec, Plan, make_plan
from sluice.limits.window import WindowState

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("sluice.limits")

NO_LIMIT = -1


class RedisLimiter:
    """:class:`~sluice.limits.base.Limiter` over Redis, shared by every replica.

    Every operation is one Lua script, so it is atomic across all the buckets of a request.
    Time comes from the Redis server's ``TIME`` inside the script, so replicas agree on the
    windows whatever their clocks say; pass ``clock`` (tests) to use it instead.

    In-flight slots are leases: a slot is a member of the scope's sorted set scored by the
    end of its lease (``lease_s`` from its last renewal); settle and release remove it, and
    a reserve that finds the set full drops expired members and counts again. While a
    request runs, :meth:`upkeep` (one task per process) renews the leases of all of this
    replica's requests every ``lease_s / 3`` in one script call, so the lease may be short:
    a replica that dies holds its slots for at most ``lease_s``, however long requests may
    run. Each call has a ``timeout_s`` deadline: a reserve that misses it or finds Redis
    down fails with ``gateway_unavailable`` (503); a settle or release that fails (or is
    cancelled while it waits) is retried by :meth:`upkeep` until Redis answers, and its slot
    is no longer renewed meanwhile, so it frees within ``lease_s`` at worst. ``prefix``
    namespaces the keys.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "sluice:rl:",
        lease_s: float = 30.0,
        timeout_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self._prefix = prefix
        self._lease_ms = int(lease_s * 1000)
        self._clock = clock
        self._reserve = LuaScript(redis, scripts.RESERVE, timeout_s=timeout_s)
        self._adjust = LuaScript(redis, scripts.ADJUST, timeout_s=timeout_s)
        self.leases = Leases(
            renew=LuaScript(redis, scripts.RENEW, timeout_s=timeout_s),
            lease_ms=self._lease_ms,
            now_arg=self._now_arg,
            owed=Owed(what="rate limit releases"),
        )
        """This replica's slot leases and the releases it still owes."""

    async def upkeep(self) -> None:
        """Renew this replica's slot leases and retry failed releases, until cancelled. Run
        it as a background task of the process (the lifespan's task group)."""
        await self.leases.run()

    def _window_key(self, scope: str, window_ms: int) -> str:
        return f"{self._prefix}w:{scope}:{window_ms // 1000}"

    def _slot_key(self, scope: str) -> str:
        return f"{self._prefix}p:{scope}"

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(round(self._clock.now() * 1000))

    async def _run(
        self, plan: Plan, *, reservation_id: str, needs: tuple[int, int, int], peek: bool
    ) -> tuple[bool, int, list[evaluate.Failure], list[WindowState], list[int]]:
        keys = [self._window_key(b.scope, b.window_ms) for b in plan.windows]
        keys += [self._slot_key(s.scope) for s in plan.slots]
        args: list[str | int] = [
            self._now_arg(),
            len(plan.windows),
            self._lease_ms,
            reservation_id,
            needs[1],
            needs[2],
            1 if peek else 0,
        ]
        for bucket in plan.windows:
            args.append(bucket.window_ms)
            args.extend(NO_LIMIT if v is None else v for v in bucket.limits)
        args.extend(s.limit for s in plan.slots)
        try:
            reply = [int(v) for v in await self._reserve(keys, args)]
        except STORE_ERRORS as exc:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE, "the rate limit store (Redis) is unavailable"
            ) from exc
        ok, now, n_fails = reply[0] == 1, reply[1], reply[2]
        at = 3 + 2 * n_fails
        fails = [(reply[3 + 2 * k], reply[4 + 2 * k]) for k in range(n_fails)]
        states = []
        for _ in plan.windows:
            v = reply[at : at + 7]
            states.append(WindowState(v[0], [v[1], v[3], v[5]], [v[2], v[4], v[6]]))
            at += 7
        return ok, now, fails, states, reply[at : at + len(plan.slots)]

    async def reserve(
        self,
        checks: Sequence[tuple[str, LimitSpec]],
        *,
        input_estimate: int,
        output_estimate: int,
    ) -> Reservation:
        needs = evaluate.needs_of(input_estimate, output_estimate)
        plan = make_plan(checks)
        if not plan:
            return Reservation.empty(input_estimate, output_estimate)
        rid = random_hex(16)
        ok, now, fails, states, _ = await self._run(
            plan, reservation_id=rid, needs=needs, peek=False
        )
        if not ok:
            raise LimitExceeded(
                evaluate.exceeded(plan, states, fails, now, needs),
                evaluate.status(plan, states, now),
            )
        slots = tuple(s.scope for s in plan.slots)
        if slots:
            self.leases.hold(rid, tuple(self._slot_key(scope) for scope in slots))
        return Reservation(
            id=rid,
            input_estimate=input_estimate,
            output_estimate=output_estimate,
            holds=tuple(
                WindowHold(b.scope, b.window_ms, s.start)
                for b, s in zip(plan.windows, states, strict=True)
            ),
            slots=slots,
            status=evaluate.status(plan, states, now),
        )

    async def _undo(self, reservation: Reservation, deltas: tuple[int, int, int]) -> None:
        if not reservation.slots and (not reservation.holds or deltas == (0, 0, 0)):
            return
        keys = [self._window_key(h.scope, h.window_ms) for h in reservation.holds]
        keys += [self._slot_key(scope) for scope in reservation.slots]
        args: list[str | int] = [len(reservation.holds), reservation.id]
        for hold in reservation.holds:
            args += [hold.start_ms, hold.window_ms, *deltas]
        if reservation.slots:
            self.leases.drop(reservation.id)
        try:
            await self._adjust(keys, args)
        except STORE_ERRORS as exc:
            if not reservation.slots:
                log.warning(
                    "could not settle rate limit reservation %s (%s); its estimates stay "
                    "counted until their window slides out",
                    reservation.id,
                    type(exc).__name__,
                )
                return
            log.warning(
                "could not release rate limit reservation %s (%s); retrying when Redis answers",
                reservation.id,
                type(exc).__name__,
            )
            self.leases.owed.defer(self._adjust, keys, args)
        except asyncio.CancelledError:
            if reservation.slots:
                self.leases.owed.defer(self._adjust, keys, args)  # it may not have run
            raise

    async def settle(
        self, reservation: Reservation, *, input_tokens: int, output_tokens: int
    ) -> None:
        if reservation.close():
            await self._undo(
                reservation,
                (
                    0,
                    max(0, input_tokens) - reservation.input_estimate,
                    max(0, output_tokens) - reservation.output_estimate,
                ),
            )

    async def release(self, reservation: Reservation, *, refund_request: bool = False) -> None:
        if reservation.close():
            await self._undo(
                reservation,
                (
                    -1 if refund_request else 0,
                    -reservation.input_estimate,
                    -reservation.output_estimate,
                ),
            )

    async def remaining(self, checks: Sequence[tuple[str, LimitSpec]]) -> RateLimitStatus:
        plan = make_plan(checks)
        if not plan:
            return RateLimitStatus()
        _, now, _, states, in_flight = await self._run(
            plan, reservation_id="", needs=(0, 0, 0), peek=True
        )
        return evaluate.status(plan, states, now, in_flight=in_flight)
