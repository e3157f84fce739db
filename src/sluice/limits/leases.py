"""The in-flight slots one replica holds in Redis: leases kept alive while requests run, and
releases that failed retried once Redis answers again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from sluice.limits.lua import STORE_ERRORS, LuaScript

log = logging.getLogger("sluice.limits")

RENEW_BATCH = 1000
"""Reservations renewed per script call: bounds one call's time on the Redis server."""


class Leases:
    """Slot leases of this replica's requests in flight, and the releases still owed.

    A reserve registers its reservation with :meth:`hold`; its release :meth:`drop` s it.
    :meth:`run` (one task per process, in the lifespan's task group) renews every held
    lease each ``renew_s`` in a few script calls, whatever the number of requests, so a
    request keeps its slots however long it runs while a replica that dies frees them
    within one lease. A release that Redis did not answer (down, frozen, or the request was
    cancelled while it waited) is :meth:`defer` red: its lease is no longer renewed, and the
    release is tried again every ``retry_s`` until Redis answers, in order. At most
    ``max_pending`` releases wait; past that the oldest is dropped (its lease frees it).
    """

    def __init__(
        self,
        *,
        renew: LuaScript,
        adjust: LuaScript,
        lease_ms: int,
        now_arg: Callable[[], str],
        retry_s: float = 1.0,
        max_pending: int = 10_000,
    ) -> None:
        self._renew = renew
        self._adjust = adjust
        self._lease_ms = lease_ms
        self._now_arg = now_arg
        self.renew_s = lease_ms / 3000
        """Renewal period: a third of the lease, so two renewals in a row may fail (a Redis
        stall, a busy event loop) before a live slot can expire."""
        self.retry_s = retry_s
        self._held: dict[str, tuple[str, ...]] = {}
        self._pending: deque[tuple[list[str], list[str | int]]] = deque()
        self._max_pending = max_pending
        self._wake = asyncio.Event()
        self._failing = False

    @property
    def held(self) -> int:
        """Reservations whose leases this replica renews."""
        return len(self._held)

    @property
    def pending(self) -> int:
        """Releases waiting for Redis."""
        return len(self._pending)

    def hold(self, reservation_id: str, slot_keys: tuple[str, ...]) -> None:
        self._held[reservation_id] = slot_keys

    def drop(self, reservation_id: str) -> None:
        self._held.pop(reservation_id, None)

    def defer(self, keys: list[str], args: list[str | int]) -> None:
        """Queue a release (an adjust call) that Redis did not answer. The adjust script is
        safe to run twice (see ``scripts.ADJUST``), so a call that did reach the server
        before the failure costs nothing when retried."""
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            log.warning(
                "%d rate limit releases wait for Redis; dropped the oldest (its slot frees "
                "when its lease ends)",
                self._max_pending,
            )
        self._pending.append((keys, args))
        self._wake.set()

    async def retry(self) -> bool:
        """Send the releases still owed, oldest first; stop at the first failure. ``True``
        when none is left."""
        while self._pending:
            keys, args = self._pending[0]
            try:
                await self._adjust(keys, args)
            except STORE_ERRORS:
                return False
            self._pending.popleft()
        return True

    async def renew(self) -> None:
        """Extend every held lease to ``lease`` from now (and prune expired slots in those
        sets). Raises a store error when Redis does not answer."""
        ids = list(self._held.items())
        for start in range(0, len(ids), RENEW_BATCH):
            by_key: dict[str, list[str]] = {}
            for rid, slot_keys in ids[start : start + RENEW_BATCH]:
                for key in slot_keys:
                    by_key.setdefault(key, []).append(rid)
            await self._renew(list(by_key), _renew_args(self._now_arg(), self._lease_ms, by_key))

    async def run(self) -> None:
        """Renew and retry until cancelled; on cancellation, try the owed releases once more
        (stopping at the first failure)."""
        loop = asyncio.get_running_loop()
        next_renew = loop.time() + self.renew_s
        try:
            while True:
                wait = next_renew - loop.time()
                if self._pending:
                    wait = min(wait, self.retry_s)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, wait)):
                        await self._wake.wait()
                await self._tick(loop.time() >= next_renew)
                if loop.time() >= next_renew:
                    next_renew = loop.time() + self.renew_s
        finally:
            if self._pending:
                with contextlib.suppress(Exception):
                    await self.retry()

    async def _tick(self, renew: bool) -> None:
        try:
            if self._pending and not await self.retry():
                raise TimeoutError("a release was not answered")
            if renew:
                await self.renew()
        except Exception as exc:
            if not self._failing:
                self._failing = True
                log.warning(
                    "Redis does not answer the rate limiter (%s); %d slot releases wait, "
                    "%d leases not renewed",
                    type(exc).__name__,
                    len(self._pending),
                    len(self._held),
                )
            return
        if self._failing:
            self._failing = False
            log.warning("Redis answers the rate limiter again; owed releases were sent")


def _renew_args(now: str, lease_ms: int, by_key: dict[str, list[str]]) -> list[str | int]:
    args: list[str | int] = [now, lease_ms]
    for rids in by_key.values():
        args.append(len(rids))
        args.extend(rids)
    return args
