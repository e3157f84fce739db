"""Failure throttling: a sliding window of failures per bucket (an account, a client address).

A bucket with ``max_failures`` failures inside the window is refused until the oldest of
them leaves it. Used by the console's sign-in and by the bad-key guard of the key check.

Kept in this process's memory (a replica set or ``--workers N`` multiplies the allowance by
the number of processes). Memory is bounded: a bucket keeps at most ``max_failures`` times,
and at ``max_buckets`` the expired buckets are dropped, then the oldest tenth if that was not
enough, so a flood from many addresses costs a bounded table and amortised constant work.
"""

from __future__ import annotations

from sluice.clock import Clock

MAX_BUCKETS = 50_000


class FailureThrottle:
    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int,
        window_s: float,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self._clock = clock
        self._max = max(1, max_failures)
        self._window_s = window_s
        self._max_buckets = max(1, max_buckets)
        self._failures: dict[str, list[float]] = {}
        """Bucket → monotonic times of its failures in the window, oldest first."""
        self._limited: dict[str, float] = {}
        """Bucket → when it may try again; only buckets at the limit."""
        self._horizon = 0.0
        """No bucket is limited after this moment."""

    def __len__(self) -> int:
        """Buckets tracked (for tests and the memory bound)."""
        return len(self._failures)

    def any_limited(self) -> bool:
        """Whether any bucket may be refused now: one dict check while none is, so callers
        can skip working out a bucket's name."""
        if not self._limited:
            return False
        if self._clock.monotonic() >= self._horizon:
            self._limited.clear()
            return False
        return True

    def retry_after_s(self, buckets: tuple[str, ...]) -> float | None:
        """Seconds until these buckets may try again, or ``None`` when they may now."""
        limited = self._limited
        if not limited:
            return None
        now = self._clock.monotonic()
        wait = 0.0
        for bucket in buckets:
            until = limited.get(bucket)
            if until is not None:
                if until > now:
                    wait = max(wait, until - now)
                else:
                    del limited[bucket]
        return wait or None

    def failed(self, buckets: tuple[str, ...]) -> bool:
        """Count a failure in each bucket; ``True`` when one of them reached the limit now."""
        now = self._clock.monotonic()
        cutoff = now - self._window_s
        reached = False
        for bucket in buckets:
            times = self._failures.get(bucket)
            if times is None:
                self._make_room(now)
                times = self._failures[bucket] = []
            while times and times[0] <= cutoff:
                del times[0]
            times.append(now)
            if len(times) > self._max:
                del times[0]
            if len(times) >= self._max:
                until = times[0] + self._window_s
                reached = reached or bucket not in self._limited
                self._limited[bucket] = until
                self._horizon = max(self._horizon, until)
        return reached

    def succeeded(self, bucket: str) -> None:
        """Forget a bucket's failures (a correct password clears its account's)."""
        self._failures.pop(bucket, None)
        self._limited.pop(bucket, None)

    def _make_room(self, now: float) -> None:
        failures = self._failures
        if len(failures) < self._max_buckets:
            return
        cutoff = now - self._window_s
        for bucket in [b for b, times in failures.items() if not times or times[-1] <= cutoff]:
            self._forget(bucket)
        if len(failures) >= self._max_buckets:
            for bucket in list(failures)[: max(1, self._max_buckets // 10)]:
                self._forget(bucket)

    def _forget(self, bucket: str) -> None:
        del self._failures[bucket]
        self._limited.pop(bucket, None)
