"""MCP usage rows through the real batched writer, over SQLite and PostgreSQL: every MCP
field is stored, dead letters keep them, and the model rollups ignore MCP rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from sqlalchemy import func, select

from sluice.storage.sql import tables as t
from sluice.storage.sql.repository import SqlStorage
from sluice.usage.dead_letters import DeadLetter, event_from_json, event_json
from sluice.usage.event import MCP_SESSION, MCP_TOOL, UsageEvent
from sluice.usage.writer import UsageWriter

T0 = 1_700_000_000.0


class Keys:
    async def touch(self, last_used: Mapping[str, float]) -> None:
        return None


def tool_call(rid: str, **fields: object) -> UsageEvent:
    e = UsageEvent(
        rid,
        T0,
        MCP_TOOL,
        "key_a",
        None,
        latency_ms=42.5,
        user_id="u1",
        team_id="t1",
        org_id="o1",
        mcp_server="everything",
        mcp_tool="echo",
        bytes_in=120,
        bytes_out=3_000_000_000,
    )
    for name, value in fields.items():
        setattr(e, name, value)
    return e


async def test_mcp_rows_are_stored_whole_and_left_out_of_the_model_rollups(
    storage: SqlStorage,
) -> None:
    ok = tool_call("r-ok")
    failed = tool_call("r-err", status=502, rpc_error=-32603, error_kind="provider_5xx")
    session = UsageEvent(
        "r-session", T0, MCP_SESSION, "key_a", None, org_id="o1", mcp_server="everything"
    )
    chat = UsageEvent("r-chat", T0, "chat", "key_a", "mock-gpt", cost_micros=10, org_id="o1")
    writer = UsageWriter(storage.usage, Keys(), dead_letters=storage.dead_letters)  # type: ignore[arg-type]
    for e in (ok, failed, session, chat):
        writer.record(e)
    assert await writer.flush() == 4
    rows = {r.request_id: r for r in await storage.usage.recent()}
    assert rows["r-ok"] == ok
    assert rows["r-err"] == failed
    assert rows["r-err"].rpc_error == -32603
    assert rows["r-session"] == session
    assert rows["r-chat"] == chat
    async with storage.engine.connect() as conn:
        hourly = (
            await conn.execute(select(t.rollup_hourly.c.model, t.rollup_hourly.c.requests))
        ).all()
        assert [tuple(r) for r in hourly] == [("mock-gpt", 1)]
        coarse = await conn.scalar(select(func.sum(t.rollup_daily_models.c.requests)))
        assert int(coarse or 0) == 1


async def test_mcp_fields_survive_the_dead_letters(storage: SqlStorage) -> None:
    e = tool_call("r-dead", rpc_error=-32602)
    assert event_from_json(event_json(e)) == e
    letter = DeadLetter("r-dead", T0, T0 + 1, e, "refused")
    await storage.dead_letters.add([letter])
    [stored] = await storage.dead_letters.page(limit=10)
    assert stored.event == e
    assert replace(stored.event, bodies=None).mcp_tool == "echo"


async def test_a_batch_of_mcp_rows_only_is_written(storage: SqlStorage) -> None:
    writer = UsageWriter(storage.usage, Keys(), dead_letters=storage.dead_letters)  # type: ignore[arg-type]
    for i in range(3):
        writer.record(tool_call(f"r{i}"))
    assert await writer.flush() == 3
    assert writer.dead_lettered == 0
    assert await storage.usage.count() == 3
    async with storage.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(t.rollup_hourly)) == 0


async def test_migration_0016_adds_and_removes_the_mcp_columns(storage: SqlStorage) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from sluice.auth.service import create_key
    from sluice.storage.sql.migrate import _config, current_revision, upgrade_engine
    from sluice.storage.sql.tables import HEAD_REVISION

    key = (await create_key(storage.keys, name="old", now=1.0, models=("m",))).record
    await storage.usage.insert_many([UsageEvent("r-old", T0, "chat", key.id, "m")])
    async with storage.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_config(c), "0015"))

        def columns(c: object, table: str) -> set[str]:
            return {col["name"] for col in inspect(c).get_columns(table)}

        assert "mcp_servers" not in await conn.run_sync(columns, "api_keys")
        assert "mcp_tool" not in await conn.run_sync(columns, "usage_events")
    assert await current_revision(storage.engine) == "0015"
    await upgrade_engine(storage.engine)
    assert await current_revision(storage.engine) == HEAD_REVISION
    # Rows written before the migration read as "no MCP lists, no MCP fields".
    again = await storage.keys.get(key.id)
    assert again == key and again.mcp_servers is None and again.mcp_tools_exclude == ()
    [old] = await storage.usage.recent()
    assert (old.mcp_server, old.bytes_in, old.bytes_out, old.rpc_error) == (None, 0, 0, None)
    for level in ("orgs", "teams", "users"):
        async with storage.engine.connect() as conn:
            assert {"mcp_servers", "mcp_tools_exclude"} <= await conn.run_sync(columns, level)
