from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pytest

from sluice.clock import FakeClock
from sluice.usage.dead_letters import DeadLetter, RowRejected
from sluice.usage.event import UsageEvent
from sluice.usage.writer import TOUCH_INTERVAL_S, UsageWriter
from tests.logs import has_traceback


class FlakyUsage:
    """An in-memory usage repository that can be told to fail."""

    def __init__(self) -> None:
        self.rows: dict[str, UsageEvent] = {}
        self.failing = False

    async def insert_many(self, events: Sequence[UsageEvent]) -> None:
        if self.failing:
            raise ConnectionError("database down")
        for e in events:
            self.rows.setdefault(e.request_id, e)

    async def count(self) -> int:
        return len(self.rows)

    async def recent(self, *, limit: int = 100) -> list[UsageEvent]:
        return list(self.rows.values())[-limit:]


class Keys:
    def __init__(self) -> None:
        self.touched: dict[str, float] = {}

    async def touch(self, last_used: Mapping[str, float]) -> None:
        self.touched.update(last_used)


def _ev(i: int, key: str | None = "key_a") -> UsageEvent:
    return UsageEvent(f"r{i}", float(i), "chat", key, "m")


async def test_rows_survive_a_failed_flush_and_close_writes_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    usage, keys = FlakyUsage(), Keys()
    writer = UsageWriter(usage, keys, batch_size=10)  # type: ignore[arg-type]
    for i in range(25):
        writer.record(_ev(i, key="master" if i == 0 else "key_a"))
    usage.failing = True
    assert await writer.flush() == 0
    assert writer.pending == 25 and writer.flush_errors == 1
    usage.failing = False
    writer.record(_ev(25, key="key_b"))
    await writer.close()
    assert writer.pending == 0 and len(usage.rows) == 26 and writer.written == 26
    assert keys.touched == {"key_a": 24.0, "key_b": 25.0}  # the master key has no row to touch


async def test_key_last_use_is_written_at_once_for_a_new_key_then_paced() -> None:
    usage, keys, clock = FlakyUsage(), Keys(), FakeClock()
    calls: list[dict[str, float]] = []

    async def touch(last_used: Mapping[str, float]) -> None:
        calls.append(dict(last_used))

    keys.touch = touch  # type: ignore[method-assign]
    writer = UsageWriter(usage, keys, batch_size=10, clock=clock)  # type: ignore[arg-type]
    writer.record(_ev(1))
    await writer.flush()
    assert calls == [{"key_a": 1.0}]  # first sight: at once
    writer.record(_ev(2))
    await writer.flush()
    assert len(calls) == 1  # seen before, interval not over: later
    writer.record(_ev(3, key="key_b"))
    await writer.flush()
    assert calls[-1] == {"key_a": 2.0, "key_b": 3.0}  # a new key takes the pending one along
    writer.record(_ev(4))
    await writer.flush()
    clock.advance(TOUCH_INTERVAL_S)
    await writer.flush()  # nothing new buffered: the pending time is written when due
    assert calls[-1] == {"key_a": 4.0} and len(calls) == 3
    writer.record(_ev(5))
    await writer.close()
    assert calls[-1] == {"key_a": 5.0}  # shutdown writes what is pending


async def test_rows_recorded_while_the_observers_run_wait_for_the_next_flush() -> None:
    usage, keys = FlakyUsage(), Keys()
    writer = UsageWriter(usage, keys, batch_size=500)  # type: ignore[arg-type]
    seen: list[str] = []

    def observer(events: list[UsageEvent]) -> None:
        seen.extend(e.request_id for e in events)
        if len(seen) == 50:  # between two chunks of observed events, a request finishes
            writer.record(_ev(999))

    writer.observe(observer)
    for i in range(120):
        writer.record(_ev(i))
    assert await writer.flush() == 120
    assert "r999" not in usage.rows and writer.pending == 1
    assert await writer.flush() == 1
    assert seen.count("r999") == 1 and len(usage.rows) == 121


async def test_a_backlog_asks_for_ordinary_scheduling_until_it_is_written() -> None:
    import asyncio

    usage, keys, calls = FlakyUsage(), Keys(), []
    writer = UsageWriter(usage, keys, batch_size=10, interval_s=0.01, urgent=calls.append)  # type: ignore[arg-type]
    usage.failing = True  # the database threads get no time: rows pile up
    for i in range(41):
        writer.record(_ev(i))
    assert calls == [True]  # past four batches, once
    usage.failing = False
    runner = asyncio.ensure_future(writer.run())
    for _ in range(100):
        await asyncio.sleep(0.01)
        if calls == [True, False]:
            break
    runner.cancel()
    assert calls == [True, False] and writer.pending == 0 and len(usage.rows) == 41


def test_worker_threads_run_idle_and_ordinary_when_urgent() -> None:
    import os
    import threading

    from sluice.storage.sql.engine import WORKER_NICE, WorkerPriority

    if not hasattr(os, "SCHED_IDLE"):
        pytest.skip("no SCHED_IDLE on this platform")
    started, done = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), done.wait(5)))
    worker.start()
    started.wait(5)

    class Conn:  # the shape of an aiosqlite connection: ._connection._thread
        class _connection:
            _thread = worker

    try:
        priority = WorkerPriority()
        priority.adopt(Conn())
        assert worker.native_id is not None
        assert os.sched_getscheduler(worker.native_id) == os.SCHED_IDLE
        priority.urgent(True)
        assert os.sched_getscheduler(worker.native_id) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, worker.native_id) == WORKER_NICE
        priority.urgent(False)
        assert os.sched_getscheduler(worker.native_id) == os.SCHED_IDLE
    finally:
        done.set()
        worker.join()


class PickyUsage(FlakyUsage):
    """Refuses, as a database would, any batch holding a row whose user is ``poison``."""

    def __init__(self) -> None:
        super().__init__()
        self.inserts = 0

    async def insert_many(self, events: Sequence[UsageEvent]) -> None:
        self.inserts += 1
        if any(e.end_user == "poison" for e in events):
            raise RowRejected("value refused")
        await super().insert_many(events)


class Letters:
    def __init__(self) -> None:
        self.stored: list[DeadLetter] = []
        self.failing = False

    async def add(self, letters: Sequence[DeadLetter]) -> None:
        if self.failing:
            raise ConnectionError("database down")
        self.stored.extend(letters)


def _poisoned(i: int) -> UsageEvent:
    e = _ev(i)
    e.end_user = "poison"
    return e


async def test_poisoned_rows_are_isolated_and_every_other_row_is_written() -> None:
    usage, letters = PickyUsage(), Letters()
    writer = UsageWriter(usage, Keys(), batch_size=64, dead_letters=letters)  # type: ignore[arg-type]
    poisoned = {5, 40, 41, 99}
    for i in range(100):
        writer.record(_poisoned(i) if i in poisoned else _ev(i))
    assert await writer.flush() == 100
    assert writer.pending == 0 and writer.written == 96 and writer.dead_lettered == 4
    assert set(usage.rows) == {f"r{i}" for i in range(100) if i not in poisoned}
    assert sorted(d.request_id for d in letters.stored) == sorted(f"r{i}" for i in poisoned)
    assert all(d.error == "value refused" and d.event.end_user == "poison" for d in letters.stored)
    assert usage.inserts < 40  # split in halves, not row by row


async def test_rows_wait_when_the_dead_letters_cannot_be_stored() -> None:
    usage, letters = PickyUsage(), Letters()
    writer = UsageWriter(usage, Keys(), batch_size=10, dead_letters=letters)  # type: ignore[arg-type]
    for i in range(10):
        writer.record(_poisoned(i) if i == 3 else _ev(i))
    letters.failing = True
    assert await writer.flush() == 0
    assert writer.pending == 10 and writer.down and not letters.stored
    letters.failing = False
    assert await writer.flush() == 10
    assert writer.pending == 0 and len(usage.rows) == 9 and len(letters.stored) == 1


async def test_an_outage_logs_one_line_when_it_starts_and_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    usage = FlakyUsage()
    writer = UsageWriter(usage, Keys(), batch_size=10, dead_letters=Letters())  # type: ignore[arg-type]
    usage.failing = True
    caplog.set_level(logging.INFO, logger="sluice.usage")
    for i in range(7):
        writer.record(_ev(i))
        assert await writer.flush() == 0
    assert writer.flush_errors == 7 and writer.down
    usage.failing = False
    assert await writer.flush() == 7
    assert not writer.down
    lines = [(r.levelno, r.getMessage(), has_traceback(r)) for r in caplog.records]
    assert [(level, exc) for level, _, exc in lines] == [
        (logging.WARNING, False),
        (logging.INFO, False),
    ]
    assert "unreachable" in lines[0][1] and "ConnectionError: database down" in lines[0][1]
    assert "7 usage rows that waited" in lines[1][1]


async def test_retries_back_off_while_the_database_is_down() -> None:
    usage = FlakyUsage()
    writer = UsageWriter(usage, Keys(), interval_s=0.5, retry_max_s=3.0)  # type: ignore[arg-type]
    writer.record(_ev(1))
    usage.failing = True
    delays = []
    for _ in range(5):
        await writer.flush()
        delays.append(writer.retry_delay_s)
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    usage.failing = False
    await writer.flush()
    assert not writer.down and writer.retry_delay_s == 0.5


class RefusingLetters(Letters):
    async def add(self, letters: Sequence[DeadLetter]) -> None:
        raise RowRejected("refused here too")


async def test_a_row_refused_by_the_dead_letters_too_is_logged_and_counted_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    usage = PickyUsage()
    writer = UsageWriter(usage, Keys(), batch_size=10, dead_letters=RefusingLetters())  # type: ignore[arg-type]
    for i in range(4):
        writer.record(_poisoned(i) if i == 2 else _ev(i))
    assert await writer.flush() == 4
    assert writer.pending == 0 and len(usage.rows) == 3
    assert (writer.dead_lettered, writer.dropped) == (0, 1)
    dropped = [r.getMessage() for r in caplog.records if "dropped:" in r.getMessage()]
    assert len(dropped) == 1 and '"request_id": "r2"' in dropped[0]


async def test_threads_run_ordinary_while_writes_fail_and_for_the_last_rows() -> None:
    """A failed write (a starved idle-time thread may hold the lock) and shutdown (the last
    rows must not wait for idle time) put the database threads on ordinary scheduling."""
    usage, keys, calls = FlakyUsage(), Keys(), []
    writer = UsageWriter(usage, keys, batch_size=10, interval_s=0.01, urgent=calls.append)  # type: ignore[arg-type]
    usage.failing = True
    writer.record(_ev(0))
    await writer.flush()
    assert calls == [True] and writer.down
    await writer.flush()
    assert calls == [True]  # once per outage
    usage.failing = False
    await writer.flush()
    assert not writer.down and len(usage.rows) == 1
    writer._set_backlog(False)  # what the run loop does once the buffer is small
    writer.record(_ev(1))
    await writer.close()
    assert calls == [True, False, True] and len(usage.rows) == 2
