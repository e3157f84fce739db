from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter


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
