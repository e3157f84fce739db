"""Sliding-window counter arithmetic, shared by every backend.

A window of length ``W`` keeps two fixed-window counters: the current one (started at
``start``, a multiple of ``W`` since the epoch) and the previous one. At ``e`` ms into the
current window the count is estimated as ``cur + prev * (W - e) / W``: the previous window
slides out linearly. A request needing ``k`` units is admitted when that estimate plus
``k`` is at most the limit.

The admission test is computed in IEEE doubles in exactly the order the Redis Lua script
uses, so the memory and Redis backends agree to the last bit. Everything else (retry times,
remaining, reset) is advisory and computed here for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class WindowState:
    """Counters of one bucket: per metric (requests, input, output) previous and current."""

    start: int
    prev: list[int] = field(default_factory=lambda: [0, 0, 0])
    cur: list[int] = field(default_factory=lambda: [0, 0, 0])

    def roll(self, now_ms: int, window_ms: int) -> None:
        """Move to the window containing ``now_ms``; older counts are forgotten."""
        start = now_ms - now_ms % window_ms
        if start == self.start:
            return
        self.prev = self.cur if start - window_ms == self.start else [0, 0, 0]
        self.cur = [0, 0, 0]
        self.start = start


def estimate(prev: int, cur: int, window_ms: int, elapsed_ms: int) -> float:
    """The sliding count: ``cur + prev * (W - e) / W`` (float, Lua's order of operations)."""
    return float(cur) + float(prev) * float(window_ms - elapsed_ms) / float(window_ms)


def admits(prev: int, cur: int, *, need: int, limit: int, window_ms: int, elapsed_ms: int) -> bool:
    """Whether ``need`` more units fit under ``limit`` now."""
    return estimate(prev, cur, window_ms, elapsed_ms) + float(need) <= float(limit)


def retry_ms(
    prev: int, cur: int, *, need: int, limit: int, window_ms: int, elapsed_ms: int
) -> int | None:
    """Milliseconds until ``need`` units fit if nothing else is counted; ``None``: never.

    Exact integer arithmetic plus one millisecond, so the float admission test passes once
    that time has elapsed.
    """
    if need > limit:
        return None
    if admits(prev, cur, need=need, limit=limit, window_ms=window_ms, elapsed_ms=elapsed_ms):
        return 0
    left = window_ms - elapsed_ms
    if cur + need <= limit:
        # Fits in this window once enough of the previous one has slid out:
        # prev * (left - t) <= (limit - cur - need) * W.
        return left - (limit - cur - need) * window_ms // prev + 1
    # Wait for the next window, where this window's count becomes the previous one:
    # cur * (W - x) <= (limit - need) * W.
    x = window_ms - (limit - need) * window_ms // cur
    return left + max(0, x) + 1


def reset_ms(prev: int, cur: int, window_ms: int, elapsed_ms: int) -> int:
    """Milliseconds until the bucket is back to zero if nothing else is counted."""
    left = window_ms - elapsed_ms
    if cur > 0:
        return left + window_ms
    return left if prev > 0 else 0


def remaining(prev: int, cur: int, limit: int, window_ms: int, elapsed_ms: int) -> int:
    """Units that would be admitted now."""
    return max(0, math.floor(float(limit) - estimate(prev, cur, window_ms, elapsed_ms)))
