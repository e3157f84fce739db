"""A PostgreSQL outage under the usage writer: rows wait, one line says so, and when the
database is back they are written and one line says how many waited. Nothing is
dead-lettered for an outage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pytest

from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter
from tests.logs import has_traceback
from tests.services import PrivatePostgres


class Keys:
    async def touch(self, last_used: Mapping[str, float]) -> None:
        return None


def _ev(i: int) -> UsageEvent:
    return UsageEvent(f"r{i}", 1_700_000_000.0 + i, "chat", "key_a", "mock-gpt")


async def test_rows_wait_out_a_database_outage_with_one_line_at_each_edge(
    private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    storage = SqlStorage.from_url(private_postgres.url)
    await upgrade_engine(storage.engine)
    writer = UsageWriter(
        storage.usage,
        Keys(),  # type: ignore[arg-type]
        batch_size=20,
        dead_letters=storage.dead_letters,
    )
    try:
        writer.record(_ev(0))
        assert await writer.flush() == 1
        caplog.set_level(logging.INFO, logger="sluice.usage")
        private_postgres.stop()
        for i in range(1, 51):
            writer.record(_ev(i))
            if i % 10 == 0:
                assert await writer.flush() == 0
        assert writer.down and writer.pending == 50 and writer.dead_lettered == 0
        private_postgres.start()
        for _ in range(50):  # the pool's dead connections may fail one more attempt
            if await writer.flush():
                break
            await asyncio.sleep(0.1)
        assert writer.pending == 0 and not writer.down and writer.dead_lettered == 0
        assert await storage.usage.count() == 51
        assert await storage.dead_letters.count() == 0
    finally:
        await storage.close()
    assert not [r for r in caplog.records if has_traceback(r)], "no traceback anywhere"
    lines = [r for r in caplog.records if r.name == "sluice.usage"]
    assert [(r.levelno, has_traceback(r)) for r in lines] == [
        (logging.WARNING, False),
        (logging.INFO, False),
    ], [r.getMessage() for r in lines]
    assert "usage database unreachable" in lines[0].getMessage()
    assert "the 50 usage rows that waited" in lines[1].getMessage()
