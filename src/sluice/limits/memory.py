"""The limiter for one process: counters in dicts, one lock around each whole operation."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

from sluice.clock import Clock
from sluice.limits import evaluate
from sluice.limits.base import RateLimitStatus, Reservation, WindowHold
from sluice.limits.errors import LimitExceeded
from sluice.limits.spec import INPUT, OUTPUT, REQUESTS, LimitSpec, make_plan
from sluice.limits.window import WindowState

_SWEEP_EVERY = 4096


class MemoryLimiter:
    """:class:`~sluice.limits.base.Limiter` for a single process.

    Each operation runs start to end under one ``threading.Lock`` without awaiting, so it is
    atomic across every bucket for coroutines and threads alike. Windows follow the injected
    clock's wall time (aligned to the epoch, like the Redis backend). Slots die with the
    process, so they need no lease.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, int], WindowState] = {}
        self._in_flight: dict[str, int] = {}
        self._ops = 0
        self._ids = itertools.count(1)

    def _now_ms(self) -> int:
        return round(self._clock.now() * 1000)

    def _state(self, scope: str, window_ms: int, now_ms: int) -> WindowState:
        key = (scope, window_ms)
        state = self._windows.get(key)
        if state is None:
            state = self._windows[key] = WindowState(start=now_ms - now_ms % window_ms)
        else:
            state.roll(now_ms, window_ms)
        return state

    def _sweep(self, now_ms: int) -> None:
        """Forget windows idle for two window lengths (their counts are all zero by then)."""
        stale = [k for k, s in self._windows.items() if now_ms - s.start >= 2 * k[1]]
        for key in stale:
            del self._windows[key]

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
        now = self._now_ms()
        error: LimitExceeded | None = None
        with self._lock:
            states = [self._state(b.scope, b.window_ms, now) for b in plan.windows]
            in_flight = [self._in_flight.get(s.scope, 0) for s in plan.slots]
            fails = evaluate.failures(plan, states, in_flight, now, needs)
            if fails:
                error = LimitExceeded(
                    evaluate.exceeded(plan, states, fails, now, needs),
                    evaluate.status(plan, states, now),
                )
            else:
                for state in states:
                    cur = state.cur
                    cur[REQUESTS] += 1
                    cur[INPUT] += input_estimate
                    cur[OUTPUT] += output_estimate
                for slot in plan.slots:
                    self._in_flight[slot.scope] = self._in_flight.get(slot.scope, 0) + 1
                status = evaluate.status(plan, states, now)
                holds = tuple(
                    [
                        WindowHold(b.scope, b.window_ms, s.start)
                        for b, s in zip(plan.windows, states, strict=True)
                    ]
                )
                self._ops += 1
                if self._ops % _SWEEP_EVERY == 0:
                    self._sweep(now)
        if error is not None:
            raise error
        return Reservation(
            id=str(next(self._ids)),
            input_estimate=input_estimate,
            output_estimate=output_estimate,
            holds=holds,
            slots=tuple([s.scope for s in plan.slots]),
            status=status,
        )

    def _undo(self, reservation: Reservation, deltas: tuple[int, int, int]) -> None:
        now = self._now_ms()
        with self._lock:
            for hold in reservation.holds:
                state = self._windows.get((hold.scope, hold.window_ms))
                if state is None:
                    continue
                state.roll(now, hold.window_ms)
                if state.start == hold.start_ms:
                    counts = state.cur
                elif state.start == hold.start_ms + hold.window_ms:
                    counts = state.prev
                else:
                    continue  # the window it was counted in has slid out entirely
                for metric, delta in enumerate(deltas):
                    counts[metric] = max(0, counts[metric] + delta)
            for scope in reservation.slots:
                left = self._in_flight.get(scope, 0) - 1
                if left > 0:
                    self._in_flight[scope] = left
                else:
                    self._in_flight.pop(scope, None)

    async def settle(
        self, reservation: Reservation, *, input_tokens: int, output_tokens: int
    ) -> None:
        if reservation.close():
            self._undo(
                reservation,
                (
                    0,
                    max(0, input_tokens) - reservation.input_estimate,
                    max(0, output_tokens) - reservation.output_estimate,
                ),
            )

    async def release(self, reservation: Reservation, *, refund_request: bool = False) -> None:
        if reservation.close():
            self._undo(
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
        now = self._now_ms()
        with self._lock:
            states = [self._peek(b.scope, b.window_ms, now) for b in plan.windows]
            in_flight = [self._in_flight.get(s.scope, 0) for s in plan.slots]
        return evaluate.status(plan, states, now, in_flight=in_flight)

    def _peek(self, scope: str, window_ms: int, now_ms: int) -> WindowState:
        state = self._windows.get((scope, window_ms))
        if state is None:
            return WindowState(start=now_ms - now_ms % window_ms)
        copy = WindowState(state.start, list(state.prev), list(state.cur))
        copy.roll(now_ms, window_ms)
        return copy
