"""Background work on the event loop in slices, sized by how busy the loop is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar, cast

S = TypeVar("S", bound=Sequence[Any])

LOOP_BUSY_S = 0.001
"""A yield that takes longer than this to come back means the loop is saturated."""


async def in_slices(items: S, small: int, large: int) -> AsyncIterator[S]:
    """``items`` a slice at a time, the event loop let through between two slices.

    While the loop comes back at once (idle or nearly), slices have ``small`` items: a request
    whose data arrives meanwhile waits no longer than one small slice's work. While it comes
    back late (saturated: every yield costs a whole loop iteration), slices have ``large``
    items, or the background work would fall behind the requests and its buffer would grow.
    """
    size, start, n = small, 0, len(items)
    while start < n:
        if start:
            waited = time.perf_counter()
            await asyncio.sleep(0)
            size = large if time.perf_counter() - waited > LOOP_BUSY_S else small
        yield cast(S, items[start : start + size])  # a list's slice is a list
        start += size
