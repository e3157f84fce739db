"""The stored MCP servers (``Storage.mcp_servers``), over SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from sluice.storage.mcp_servers import StoredMcpServer
from sluice.storage.sql.repository import SqlStorage

SPEC = {"transport": "stdio", "command": "cat", "env": {"TOKEN": "env:TOKEN"}, "tags": ["a"]}


async def test_add_update_delete_and_each_write_moves_the_change_counter(
    storage: SqlStorage,
) -> None:
    repo = storage.mcp_servers
    start = await storage.keys.version()
    await repo.add(StoredMcpServer("tools", SPEC, 1000.0, 1000.0))
    assert await storage.keys.version() == start + 1
    assert await repo.all() == [StoredMcpServer("tools", SPEC, 1000.0, 1000.0)]

    changed = {**SPEC, "description": "x"}
    assert await repo.update(StoredMcpServer("tools", changed, 5.0, 2000.0))
    got = await repo.get("tools")
    assert got == StoredMcpServer("tools", changed, 1000.0, 2000.0)  # created_at is kept
    assert await storage.keys.version() == start + 2

    assert not await repo.update(StoredMcpServer("nope", SPEC, 1.0, 1.0))
    assert not await repo.delete("nope")
    assert await storage.keys.version() == start + 2  # nothing changed, nothing to reload
    assert await repo.delete("tools")
    assert await repo.all() == [] and await repo.get("tools") is None
    assert await storage.keys.version() == start + 3


async def test_a_name_is_stored_once_and_a_failed_unit_stores_nothing(storage: SqlStorage) -> None:
    await storage.mcp_servers.add(StoredMcpServer("tools", SPEC, 1.0, 1.0))
    with pytest.raises(Exception):  # noqa: B017, PT011 (the driver's integrity error)
        async with storage.unit() as unit:
            await unit.mcp_servers.add(StoredMcpServer("other", SPEC, 1.0, 1.0))
            await unit.mcp_servers.add(StoredMcpServer("tools", SPEC, 2.0, 2.0))
    assert [s.name for s in await storage.mcp_servers.all()] == ["tools"]
