"""The per-request disconnect watch: a timer first, a task only for requests that last."""

from __future__ import annotations

import asyncio
from typing import Any

from sluice.tasks import DisconnectWatch, WatchQueue


class _Answer:
    ended = False


def _receiver(gone: asyncio.Event) -> Any:
    calls: list[int] = []

    async def receive() -> dict[str, Any]:
        calls.append(1)
        await gone.wait()
        return {"type": "http.disconnect"}

    receive.calls = calls  # type: ignore[attr-defined]
    return receive


async def test_a_quick_request_never_starts_the_watch() -> None:
    receive = _receiver(asyncio.Event())
    watch = DisconnectWatch(receive, _Answer(), delay_s=0.05)
    watch.stop()
    await asyncio.sleep(0.1)
    assert receive.calls == [] and not watch.disconnected


async def test_a_client_that_left_early_is_noticed_when_the_watch_starts() -> None:
    gone = asyncio.Event()
    gone.set()  # the client is gone before the watch begins
    receive = _receiver(gone)

    async def request() -> None:
        watch = DisconnectWatch(receive, _Answer(), delay_s=0.05)
        try:
            await asyncio.sleep(5)
        finally:
            watch.stop()
            assert watch.disconnected

    task = asyncio.ensure_future(request())
    done, _ = await asyncio.wait([task], timeout=1)
    assert task in done and task.cancelled()


async def test_a_finished_answer_is_not_cancelled_by_the_closing_disconnect() -> None:
    gone = asyncio.Event()
    answer = _Answer()
    receive = _receiver(gone)
    watch = DisconnectWatch(receive, answer, delay_s=0.0)
    await asyncio.sleep(0.01)
    answer.ended = True
    gone.set()
    await asyncio.sleep(0.01)
    assert receive.calls == [1] and not watch.disconnected
    watch.stop()


async def test_a_queue_starts_only_the_watches_still_running_when_due() -> None:
    gone = asyncio.Event()
    gone.set()
    queue = WatchQueue(delay_s=0.05)
    quick, slow = _receiver(gone), _receiver(gone)
    finished = DisconnectWatch(quick, _Answer(), queue=queue, target=None)
    finished.stop()  # answered before the delay: never watched

    async def request() -> None:
        DisconnectWatch(slow, _Answer(), queue=queue)
        await asyncio.sleep(5)

    task = asyncio.ensure_future(request())
    done, _ = await asyncio.wait([task], timeout=1)
    assert task in done and task.cancelled()
    assert quick.calls == [] and slow.calls == [1]
