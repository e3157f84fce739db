"""Nothing an event holds stops the usage writer, over SQLite and PostgreSQL: every recorded
field at its limit is stored as is, beyond it is cut to fit, and a row the database still
refuses goes to the dead letters while the rest of its batch is written."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
from sqlalchemy import String, func, select

from sluice.storage.sql import tables as t
from sluice.storage.sql.repository import SqlStorage
from sluice.usage import bounds as b
from sluice.usage.dead_letters import RowRejected, replay
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter

STRING_LIMITS: Mapping[str, int] = {
    "request_id": b.REQUEST_ID_CHARS,
    "endpoint": b.ENDPOINT_CHARS,
    "key_id": b.ID_CHARS,
    "model": b.MODEL_CHARS,
    "provider": b.PROVIDER_CHARS,
    "deployment": b.DEPLOYMENT_CHARS,
    "upstream_model": b.DEPLOYMENT_CHARS,
    "error_kind": b.ERROR_KIND_CHARS,
    "error_message": b.ERROR_MESSAGE_CHARS,
    "end_user": b.END_USER_CHARS,
    "user_id": b.ID_CHARS,
    "team_id": b.ID_CHARS,
    "org_id": b.ID_CHARS,
    "trace_id": b.ID_CHARS,
    "mcp_server": b.MCP_SERVER_CHARS,
    "mcp_tool": b.MCP_TOOL_CHARS,
    "cache": b.CACHE_CHARS,
    "unit_kind": b.UNIT_KIND_CHARS,
    "batch_id": b.BATCH_ID_CHARS,
}


def test_every_string_column_of_the_usage_table_has_its_bound() -> None:
    assert {name for name, _ in b._STRINGS} == OUTSIDE
    columns = {c.name: c.type.length for c in t.usage.columns if isinstance(c.type, String)}
    columns.pop("error_message")  # text: bounded by the row rule only
    assert columns == {k: v for k, v in STRING_LIMITS.items() if k != "error_message"}
    for c in t.usage.columns:
        if isinstance(c.type, String) and c.type.length is None:
            assert c.name in STRING_LIMITS, c.name


OUTSIDE = {
    "model",
    "provider",
    "deployment",
    "upstream_model",
    "error_message",
    "end_user",
    "mcp_server",
    "mcp_tool",
}
"""Fields whose text comes from outside (caller, upstream, config): cut to fit. The others
are made by the gateway in fixed formats."""


def _event(rid: str, fill: str, extra: int) -> UsageEvent:
    """Every string field ``extra`` characters beyond its limit (``fill`` repeated): every
    field when ``extra`` is 0, the fields from outside otherwise."""
    e = UsageEvent(rid, 1_700_000_000.0, "chat", None, None)
    for name, limit in STRING_LIMITS.items():
        if name != "request_id" and (name in OUTSIDE or not extra):
            setattr(e, name, fill * (limit + extra))
    e.attempt_errors = [fill * (b.ATTEMPT_ERROR_CHARS + extra)] * (b.ATTEMPT_ERRORS + extra)
    return e


class Keys:
    async def touch(self, last_used: Mapping[str, float]) -> None:
        return None


@pytest.mark.parametrize("fill", ["x", "é", "\U0001f600"])
async def test_every_field_at_its_limit_is_stored_as_is(storage: SqlStorage, fill: str) -> None:
    e = _event("r-at-limit", fill, 0)
    e.prompt_tokens = e.completion_tokens = e.cached_tokens = e.cache_write_tokens = b.INT4_MAX
    e.attempts = b.INT4_MAX
    e.cost_micros = b.INT8_MAX
    await storage.usage.insert_many([e])
    [row] = await storage.usage.recent()
    for name, limit in STRING_LIMITS.items():
        if name != "request_id":
            assert getattr(row, name) == fill * limit, name
    assert row.attempt_errors == [fill * b.ATTEMPT_ERROR_CHARS] * b.ATTEMPT_ERRORS
    assert row.prompt_tokens == b.INT4_MAX and row.cost_micros == b.INT8_MAX


async def test_every_field_beyond_its_limit_is_cut_and_the_batch_written(
    storage: SqlStorage,
) -> None:
    long = _event("r-long", "x", 1000)
    odd = _event("r-odd", "a\x00\ud800", 1)  # NUL and a lone surrogate, beyond the limit
    odd.prompt_tokens, odd.completion_tokens = 2**80, -5
    odd.cost_micros = 2**70
    odd.latency_ms, odd.ttft_ms, odd.upstream_ms = math.nan, math.inf, -math.inf
    odd.status = 10**9
    odd.units = math.nan
    plain = UsageEvent("r-plain", 1_700_000_000.0, "chat", "key_a", "mock-gpt")
    writer = UsageWriter(storage.usage, Keys(), dead_letters=storage.dead_letters)  # type: ignore[arg-type]
    for e in (long, odd, plain):
        writer.record(e)
    assert await writer.flush() == 3
    assert writer.written == 3 and writer.dead_lettered == 0
    rows = {r.request_id: r for r in await storage.usage.recent()}
    assert set(rows) == {"r-long", "r-odd", "r-plain"}
    for name in OUTSIDE:
        limit = STRING_LIMITS[name]
        assert getattr(rows["r-long"], name) == "x" * limit, name
        value = getattr(rows["r-odd"], name)
        assert len(value) == limit and "\x00" not in value, name
        value.encode("utf-8")  # storable text
    assert len(rows["r-long"].attempt_errors or []) == b.ATTEMPT_ERRORS
    assert rows["r-long"].attempt_errors == ["x" * b.ATTEMPT_ERROR_CHARS] * b.ATTEMPT_ERRORS
    odd_row = rows["r-odd"]
    assert (odd_row.prompt_tokens, odd_row.completion_tokens) == (b.INT4_MAX, 0)
    assert odd_row.cost_micros == b.INT8_MAX
    assert (odd_row.latency_ms, odd_row.ttft_ms, odd_row.upstream_ms) == (0.0, None, 0.0)
    assert odd_row.units is None  # not a count: left out
    async with storage.engine.connect() as conn:
        models = set(
            (await conn.execute(select(t.rollup_hourly.c.model).distinct())).scalars().all()
        )
        assert "x" * b.MODEL_CHARS in models and "mock-gpt" in models


async def _poison(storage: SqlStorage) -> None:
    """Make the database refuse rows whose ``end_user`` is ``poison`` (a constraint)."""
    async with storage.engine.begin() as conn:
        if storage.engine.dialect.name == "sqlite":
            await conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON usage_events "
                "WHEN NEW.end_user = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            )
        else:
            await conn.exec_driver_sql(
                "ALTER TABLE usage_events ADD CONSTRAINT poison "
                "CHECK (end_user IS NULL OR end_user <> 'poison')"
            )


async def _cure(storage: SqlStorage) -> None:
    async with storage.engine.begin() as conn:
        if storage.engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("DROP TRIGGER poison")
        else:
            await conn.exec_driver_sql("ALTER TABLE usage_events DROP CONSTRAINT poison")


async def _rollup_requests(storage: SqlStorage) -> int:
    async with storage.engine.connect() as conn:
        total = await conn.scalar(select(func.sum(t.rollup_daily.c.requests)))
        return int(total or 0)


async def test_a_refused_row_goes_to_the_dead_letters_and_the_rest_is_written(
    storage: SqlStorage,
) -> None:
    await _poison(storage)
    bad = UsageEvent("r-poison", 1_700_000_000.0, "chat", "key_a", "mock-gpt", end_user="poison")
    with pytest.raises(RowRejected):
        await storage.usage.insert_many([bad])
    writer = UsageWriter(
        storage.usage,
        Keys(),  # type: ignore[arg-type]
        batch_size=50,
        dead_letters=storage.dead_letters,
    )
    for i in range(120):
        writer.record(
            bad if i == 37 else UsageEvent(f"r{i}", 1_700_000_000.0, "chat", "key_a", "m")
        )
    assert await writer.flush() == 120
    assert writer.pending == 0 and writer.written == 119 and writer.dead_lettered == 1
    assert await storage.usage.count() == 119
    assert await _rollup_requests(storage) == 119
    [letter] = await storage.dead_letters.page(limit=10)
    assert letter.request_id == "r-poison" and letter.event.end_user == "poison"
    assert letter.error and "poison" in letter.error.lower()

    refused = await replay(
        storage.usage.insert_many, storage.dead_letters, [letter.id or 0], now=1.0
    )
    assert refused.replayed == [] and list(refused.refused) == [letter.id]
    assert await storage.dead_letters.count() == 1

    await _cure(storage)
    done = await replay(
        storage.usage.insert_many, storage.dead_letters, [letter.id or 0, 999], now=2.0
    )
    assert done.replayed == [letter.id] and done.missing == [999]
    assert await storage.dead_letters.count() == 0
    assert await storage.usage.count() == 120 and await _rollup_requests(storage) == 120


async def test_an_id_that_does_not_fit_is_dead_lettered_where_the_database_checks(
    storage: SqlStorage,
) -> None:
    """Ids are the gateway's own; one that did not fit would be refused by PostgreSQL (SQLite
    does not check lengths) and kept as a dead letter, the rest of the batch written."""
    odd = UsageEvent("r-odd-id", 1_700_000_000.0, "chat", "k" * (b.ID_CHARS + 1), "m")
    writer = UsageWriter(storage.usage, Keys(), dead_letters=storage.dead_letters)  # type: ignore[arg-type]
    for e in (UsageEvent("r1", 1_700_000_000.0, "chat", "key_a", "m"), odd):
        writer.record(e)
    assert await writer.flush() == 2
    refused = storage.engine.dialect.name == "postgresql"
    assert (writer.written, writer.dead_lettered) == ((1, 1) if refused else (2, 0))
    assert await storage.dead_letters.count() == int(refused)
    assert await storage.usage.count() == 2 - int(refused)


async def test_logged_bodies_with_nul_bytes_are_stored(storage: SqlStorage) -> None:
    from sluice.config.model import BodyLoggingConfig
    from sluice.usage.bodies import BodyCapture, BodyPolicy

    policy = BodyPolicy(BodyLoggingConfig(teams=("t1",), max_bytes=1024))
    capture = BodyCapture(policy.cap)
    capture.request = b'{"model": "m\x00", "bad": "\xff"}'
    e = UsageEvent("r-body", 1_700_000_000.0, "chat", "key_a", "m", team_id="t1")
    e.bodies = capture
    writer = UsageWriter(
        storage.usage,
        Keys(),  # type: ignore[arg-type]
        bodies=(policy, storage.bodies),
        dead_letters=storage.dead_letters,
    )
    writer.record(e)
    assert await writer.flush() == 1
    async with storage.engine.connect() as conn:
        stored = (await conn.execute(select(t.bodies.c.request))).scalars().all()
    assert stored == ['{"model": "m\ufffd", "bad": "\ufffd"}']
