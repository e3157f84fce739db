"""The in-flight slots one replica holds in Redis: leases kept alive while requests run, and
releases that failed sent again once Redis answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sluice.limits.lua import STORE_ERRORS, LuaScript
from sluice.limits.owed import Owed

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
    cancelled while it waited) goes to :attr:`owed`: its lease is no longer renewed, and the
    release is sent again every ``owed.retry_s`` until Redis answers.
    """

    def __init__(
        self, *, renew: LuaScript, lease_ms: int, now_arg: Callable[[], str], owed: Owed
    ) -> None:
        self._renew = renew
        self._lease_ms = lease_ms
        self._now_arg = now_arg
        self.owed = owed
        self.renew_s = lease_ms / 3000
        """Renewal period: a third of the lease, so two renewals in a row may fail (a Redis
        stall, a busy event loop) before a live slot can expire."""
        self._held: dict[str, tuple[str, ...]] = {}

    @property
    def held(self) -> int:
        """Reservations whose leases this replica renews."""
        return len(self._held)

    def hold(self, reservation_id: str, slot_keys: tuple[str, ...]) -> None:
        self._held[reservation_id] = slot_keys

    def drop(self, reservation_id: str) -> None:
        self._held.pop(reservation_id, None)

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
        """Renew, and send owed releases, until cancelled; on cancellation send the owed
        releases once more (stopping at the first failure)."""
        loop = asyncio.get_running_loop()
        owed = self.owed
        next_renew = loop.time() + self.renew_s
        answered = True
        try:
            while True:
                wait = max(0.0, next_renew - loop.time())
                if not answered:
                    wait = owed.retry_s  # Redis is away: try again now and then, not in a spin
                elif owed.pending:
                    wait = min(wait, owed.retry_s)
                owed.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await owed.wake.wait()
                answered = await owed.retry()
                if answered and loop.time() >= next_renew:
                    try:
                        await self.renew()
                        next_renew = loop.time() + self.renew_s
                    except STORE_ERRORS:
                        answered = False
                    except Exception:  # a bug here must not end the process's task group
                        log.exception("renewing slot leases failed")
                        answered = False
                owed.note(answered)
        finally:
            await owed.final()


def _renew_args(now: str, lease_ms: int, by_key: dict[str, list[str]]) -> list[str | int]:
    args: list[str | int] = [now, lease_ms]
    for rids in by_key.values():
        args.append(len(rids))
        args.extend(rids)
    return args
