"""The latency histogram kept in rollups: fixed, log-spaced buckets.

Bucket ``i`` (``0 <= i < BUCKETS - 1``) counts latencies at most ``UPPER_MS[i]`` and above the
previous bound; the last bucket counts everything slower. Bounds grow by a factor of √2 from
20 ms, so an estimated percentile is within about ±19 % of the true value (geometric
interpolation inside a bucket), enough for p50/p95 on a dashboard.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

BUCKETS = 26
FIRST_MS = 20.0
UPPER_MS: tuple[float, ...] = tuple(FIRST_MS * 2 ** (i / 2) for i in range(BUCKETS - 1))
"""Upper bounds of the bounded buckets: 20 ms … 81 920 ms."""
COLUMNS: tuple[str, ...] = tuple(f"lat_{i:02d}" for i in range(BUCKETS))
"""Rollup column of each bucket."""


def bucket(latency_ms: float) -> int:
    """The bucket a latency falls in."""
    return bisect.bisect_left(UPPER_MS, latency_ms)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """Estimate the ``q`` quantile (0 < q <= 1) in milliseconds from bucket counts;
    ``None`` when there is nothing counted."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            frac = max(0.0, min(1.0, (rank - seen) / n))
            if i == 0:
                return UPPER_MS[0] * frac  # linear from 0 in the first bucket
            low = UPPER_MS[i - 1]
            high = UPPER_MS[i] if i < len(UPPER_MS) else low * math.sqrt(2)
            return float(low * (high / low) ** frac)
        seen += n
    return UPPER_MS[-1] * math.sqrt(2)
