"""Background work in slices sized by how busy the event loop is."""

from __future__ import annotations

import asyncio
import time

from sluice.usage.slices import in_slices


async def test_every_item_once_in_order_small_slices_first() -> None:
    items = list(range(95))
    chunks = [chunk async for chunk in in_slices(items, 10, 40)]
    assert [x for chunk in chunks for x in chunk] == items
    assert len(chunks[0]) == 10
    assert all(isinstance(chunk, list) for chunk in chunks)


async def test_large_slices_while_the_loop_is_saturated() -> None:
    stop = False

    async def busy() -> None:  # another task that holds the loop 3 ms per step
        while not stop:
            time.sleep(0.003)  # noqa: ASYNC251 (blocking on purpose)
            await asyncio.sleep(0)

    hog = asyncio.get_running_loop().create_task(busy())
    await asyncio.sleep(0)
    try:
        chunks = [chunk async for chunk in in_slices(list(range(200)), 10, 60)]
    finally:
        stop = True
        await hog
    assert [len(c) for c in chunks] == [10, 60, 60, 60, 10]


async def test_empty() -> None:
    assert [chunk async for chunk in in_slices([], 10, 40)] == []
