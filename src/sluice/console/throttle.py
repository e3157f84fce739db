"""Login throttling: a sliding window of failures per account and per client address.

Kept in this process's memory (a replica set multiplies the allowance by its size; see
docs/console.md). Each bucket holds at most ``max_failures`` timestamps and idle buckets are
dropped, so memory stays bounded under a password-spraying flood.
"""

from __future__ import annotations

from collections import deque

from sluice.clock import Clock

MAX_BUCKETS = 50_000


class LoginThrottle:
    def __init__(self, clock: Clock, *, max_failures: int, window_s: float) -> None:
        self._clock = clock
        self._max = max(1, max_failures)
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _live(self, bucket: str, now: float) -> deque[float] | None:
        times = self._failures.get(bucket)
        if times is None:
            return None
        while times and times[0] <= now - self._window_s:
            times.popleft()
        if not times:
            del self._failures[bucket]
            return None
        return times

    def retry_after_s(self, buckets: tuple[str, ...]) -> float | None:
        """Seconds until a sign-in may be tried again, or ``None`` when it may now."""
        now = self._clock.now()
        waits = []
        for bucket in buckets:
            times = self._live(bucket, now)
            if times is not None and len(times) >= self._max:
                waits.append(times[0] + self._window_s - now)
        return max(waits) if waits else None

    def failed(self, buckets: tuple[str, ...]) -> None:
        now = self._clock.now()
        if len(self._failures) >= MAX_BUCKETS:
            for bucket in list(self._failures):
                self._live(bucket, now)
        for bucket in buckets:
            times = self._failures.setdefault(bucket, deque(maxlen=self._max))
            times.append(now)

    def succeeded(self, account_bucket: str) -> None:
        """A correct password clears its account's failures (not the address's)."""
        self._failures.pop(account_bucket, None)


def buckets(email: str, client: str) -> tuple[str, str]:
    return f"account:{email.strip().lower()}", f"client:{client}"
