"""What each deployment looks like from this process: requests in flight, latency, errors.

:class:`DeploymentStats` is fed by the relay around every upstream attempt and read by the
selection strategies (``least_busy``, ``lowest_latency``) and by ``GET /health``. It is per
process and in memory: replicas do not share it (each balances what it sends itself).
Every call is O(1) and never awaits; asyncio needs no lock around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sluice.clock import Clock

WINDOW_BUCKETS = 10
"""A sliding window is kept as this many buckets of ``window_s / WINDOW_BUCKETS`` each."""


class WindowCounter:
    """Successes and failures over the last ``window_s`` seconds, in fixed buckets.

    Time ``t`` (any clock, seconds) falls in bucket ``floor(t / width)``; the window is the
    current bucket and the ``WINDOW_BUCKETS - 1`` before it, so it spans between
    ``window_s - width`` and ``window_s`` seconds of history. ``add`` is O(1), the totals
    O(``WINDOW_BUCKETS``). The Redis breaker computes the same buckets in Lua.
    """

    __slots__ = ("_fails", "_index", "_oks", "_width")

    def __init__(self, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self._width = window_s / WINDOW_BUCKETS
        self._index = [-1] * WINDOW_BUCKETS
        self._oks = [0] * WINDOW_BUCKETS
        self._fails = [0] * WINDOW_BUCKETS

    def add(self, now: float, *, ok: bool) -> None:
        index = math.floor(now / self._width)
        slot = index % WINDOW_BUCKETS
        if self._index[slot] != index:
            self._index[slot] = index
            self._oks[slot] = 0
            self._fails[slot] = 0
        if ok:
            self._oks[slot] += 1
        else:
            self._fails[slot] += 1

    def totals(self, now: float) -> tuple[int, int]:
        """``(requests, failures)`` in the window ending at ``now``."""
        current = math.floor(now / self._width)
        requests = failures = 0
        for slot in range(WINDOW_BUCKETS):
            if current - WINDOW_BUCKETS < self._index[slot] <= current:
                requests += self._oks[slot] + self._fails[slot]
                failures += self._fails[slot]
        return requests, failures

    def clear(self) -> None:
        for slot in range(WINDOW_BUCKETS):
            self._oks[slot] = self._fails[slot] = 0


@dataclass(frozen=True, slots=True)
class Stats:
    """One deployment as this process sees it (``GET /health``)."""

    in_flight: int = 0
    """Attempts begun and not yet ended."""
    latency_ewma_ms: float | None = None
    """Moving average of the duration of successful attempts; ``None`` before the first."""
    ttft_ewma_ms: float | None = None
    """Moving average of the time to first token of successful streams."""
    error_rate: float = 0.0
    """Failed share of the attempts ended in the window (0 when there were none)."""
    requests_in_window: int = 0
    last_error_at: float | None = None
    """Wall-clock time (epoch seconds) of the last failed attempt."""


NEUTRAL = Stats()


class _Entry:
    __slots__ = ("in_flight", "last_error_at", "latency", "latency_at", "ttft", "ttft_at", "window")

    def __init__(self, window_s: float) -> None:
        self.in_flight = 0
        self.latency: float | None = None
        self.ttft: float | None = None
        self.latency_at = 0.0
        self.ttft_at = 0.0
        self.last_error_at: float | None = None
        self.window = WindowCounter(window_s)


class DeploymentStats:
    """In-flight counts, latency EWMAs and error rates per deployment key.

    Call :meth:`begin` when an attempt is sent to a deployment and :meth:`end` exactly once
    when it finishes (``finally``), whatever happened.

    Averages: ``ewma = alpha * sample + (1 - alpha) * ewma``, seeded by the first sample.
    With the default ``alpha = 0.2`` a sample's weight halves after about three more, so a
    deployment that slows down shows it within five to ten requests while a single outlier
    moves the average by a fifth. Only successful attempts are averaged: a failure's
    duration says how the deployment fails, not how fast it serves, and would make a
    deployment that fails fast look like the fastest one.

    Staleness: :meth:`ewma` (what ``lowest_latency`` reads) reports no data for an average
    whose last sample is older than ``stale_s``, so a deployment that was once slow is
    measured again instead of never being chosen; the next sample then starts the average
    afresh. :meth:`snapshot` shows the averages regardless.

    Unknown keys have neutral stats (nothing in flight, no data, no errors).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        alpha: float = 0.2,
        window_s: float = 60.0,
        stale_s: float = 300.0,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if stale_s <= 0 or window_s <= 0:
            raise ValueError("stale_s and window_s must be positive")
        self._clock = clock
        self._alpha = alpha
        self._window_s = window_s
        self._stale_s = stale_s
        self._entries: dict[str, _Entry] = {}

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(self._window_s)
        return entry

    def begin(self, key: str) -> None:
        """An attempt was sent to ``key``."""
        self._entry(key).in_flight += 1

    def end(self, key: str, *, ok: bool, latency_ms: float, ttft_ms: float | None = None) -> None:
        """The attempt begun on ``key`` finished.

        ``ok`` is whether the deployment served it (the same verdict given to the breaker).
        ``latency_ms`` is the attempt's duration; ``ttft_ms`` the time to its first token
        when it was a stream that produced one. Both are averaged only when ``ok``.
        """
        entry = self._entry(key)
        if entry.in_flight > 0:
            entry.in_flight -= 1
        now = self._clock.monotonic()
        entry.window.add(now, ok=ok)
        if not ok:
            entry.last_error_at = self._clock.now()
            return
        entry.latency = self._average(entry.latency, latency_ms, entry.latency_at, now)
        entry.latency_at = now
        if ttft_ms is not None:
            entry.ttft = self._average(entry.ttft, ttft_ms, entry.ttft_at, now)
            entry.ttft_at = now

    def _average(self, ewma: float | None, sample: float, at: float, now: float) -> float:
        if ewma is None or now - at > self._stale_s:
            return sample  # a stale average says nothing about now: start again
        return ewma + self._alpha * (sample - ewma)

    def in_flight(self, key: str) -> int:
        entry = self._entries.get(key)
        return 0 if entry is None else entry.in_flight

    def ewma(self, key: str) -> tuple[float | None, float | None]:
        """``(ttft_ms, latency_ms)`` averages; each is ``None`` when unknown or stale."""
        entry = self._entries.get(key)
        if entry is None:
            return None, None
        now = self._clock.monotonic()
        stale = self._stale_s
        return (
            entry.ttft if now - entry.ttft_at <= stale else None,
            entry.latency if now - entry.latency_at <= stale else None,
        )

    def snapshot(self, key: str) -> Stats:
        entry = self._entries.get(key)
        if entry is None:
            return NEUTRAL
        requests, failures = entry.window.totals(self._clock.monotonic())
        return Stats(
            in_flight=entry.in_flight,
            latency_ewma_ms=entry.latency,
            ttft_ewma_ms=entry.ttft,
            error_rate=failures / requests if requests else 0.0,
            requests_in_window=requests,
            last_error_at=entry.last_error_at,
        )
