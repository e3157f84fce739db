"""Checks, rejections and header status of a plan, given its buckets' counters.

Both backends read the counters (the memory backend from its dicts, the Redis backend from
the script's reply) and hand them here, so messages and headers are the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sluice.limits import window
from sluice.limits.base import Exceeded, Quota, RateLimitStatus
from sluice.limits.spec import PARALLEL, REQUESTS, Plan

SLOT = 3
"""Metric index of an in-flight slot check (windows use 0-2)."""
SLOT_RETRY_MS = 1000

Failure = tuple[int, int]
"""(bucket index over windows then slot sets, metric)."""


def failures(
    plan: Plan,
    states: Sequence[window.WindowState],
    in_flight: Sequence[int],
    now_ms: int,
    needs: tuple[int, int, int],
) -> list[Failure]:
    """Every bucket the request would not fit in (the memory backend's admission test)."""
    out: list[Failure] = []
    for i, bucket in enumerate(plan.windows):
        state = states[i]
        w = bucket.window_ms
        left = float(w - (now_ms - state.start))
        prev, cur = state.prev, state.cur
        for metric in (0, 1, 2):
            limit = bucket.limits[metric]
            # window.admits, inlined: this loop runs for every bucket of every request.
            if limit is not None and cur[metric] + prev[metric] * left / w + needs[metric] > limit:
                out.append((i, metric))
    n_windows = len(plan.windows)
    for j, slot in enumerate(plan.slots):
        if in_flight[j] + 1 > slot.limit:
            out.append((n_windows + j, SLOT))
    return out


def exceeded(
    plan: Plan,
    states: Sequence[window.WindowState],
    fails: Sequence[Failure],
    now_ms: int,
    needs: tuple[int, int, int],
) -> tuple[Exceeded, ...]:
    out: list[Exceeded] = []
    for index, metric in fails:
        if metric == SLOT:
            slot = plan.slots[index - len(plan.windows)]
            out.append(Exceeded(slot.scope, PARALLEL, slot.limit, 1, SLOT_RETRY_MS))
            continue
        bucket, state = plan.windows[index], states[index]
        limit = bucket.limits[metric]
        assert limit is not None
        retry = window.retry_ms(
            state.prev[metric],
            state.cur[metric],
            need=needs[metric],
            limit=limit,
            window_ms=bucket.window_ms,
            elapsed_ms=now_ms - state.start,
        )
        out.append(Exceeded(bucket.scope, bucket.limit_name(metric), limit, needs[metric], retry))
    return tuple(out)


def status(
    plan: Plan,
    states: Sequence[window.WindowState],
    now_ms: int,
    *,
    in_flight: Sequence[int] | None = None,
) -> RateLimitStatus:
    """The request and token buckets with the fewest remaining (ties: the longer reset);
    with ``in_flight`` (the count of each of ``plan.slots``) also the fullest slot set."""
    best: list[tuple[int, int, int, int] | None] = [None, None]
    """Per kind (requests, tokens): remaining, -reset_ms, limit, bucket index * 3 + metric."""
    for i, bucket in enumerate(plan.windows):
        state = states[i]
        w = bucket.window_ms
        elapsed = now_ms - state.start
        left = float(w - elapsed)
        for metric in (0, 1, 2):
            limit = bucket.limits[metric]
            if limit is None:
                continue
            prev, cur = state.prev[metric], state.cur[metric]
            left_units = math.floor(limit - (cur + prev * left / w))  # window.remaining
            kind = 0 if metric == REQUESTS else 1
            held = best[kind]
            if held is None or left_units <= held[0]:
                reset = window.reset_ms(prev, cur, w, elapsed)
                rank = (max(0, left_units), -reset, limit, i * 3 + metric)
                if held is None or rank < held:
                    best[kind] = rank
    quotas = [None if b is None else Quota(b[2], b[0], -b[1]) for b in best]
    return RateLimitStatus(requests=quotas[0], tokens=quotas[1], slots=_fullest(plan, in_flight))


def _fullest(plan: Plan, in_flight: Sequence[int] | None) -> Quota | None:
    if in_flight is None or not plan.slots:
        return None
    free = [(max(0, s.limit - n), s.limit) for s, n in zip(plan.slots, in_flight, strict=True)]
    remaining, limit = min(free)
    return Quota(limit, remaining, 0)


def needs_of(input_estimate: int, output_estimate: int) -> tuple[int, int, int]:
    """What one request needs of each window metric (requests, input, output)."""
    if input_estimate < 0 or output_estimate < 0:
        raise ValueError("token estimates must be non-negative")
    return (1, input_estimate, output_estimate)
