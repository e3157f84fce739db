"""Usage accounting in a real ``sluice serve`` on its own PostgreSQL: a too-long model is a
400 naming ``model`` and accounting goes on; a database outage under traffic logs one line
when it starts and one with the count of waiting rows when it ends, and no row is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.support import start_gateway
from tests.services import PrivatePostgres

pytestmark = pytest.mark.e2e

CHAT = {"model": "m-chat", "messages": [{"role": "user", "content": "hi"}]}


async def _count(dsn: str, where: str = "TRUE") -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM usage_events WHERE {where}"))
    finally:
        await conn.close()


async def _wait_count(dsn: str, want: int, *, timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        n = await _count(dsn)
        if n >= want or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.1)


async def test_accounting_survives_long_models_and_a_database_outage(
    tmp_path: Path,
    private_postgres: PrivatePostgres,
    mock_port: int,
    down_port: int,
    echo_port: int,
) -> None:
    dsn = private_postgres.url.replace("postgresql+asyncpg://", "postgresql://")
    gw = start_gateway(
        tmp_path / "gw",
        mock_port,
        down_port,
        echo_port,
        SLUICE_DATABASE_URL=private_postgres.url,
    )
    headers = {"Authorization": f"Bearer {gw.key}"}
    try:
        async with httpx.AsyncClient(base_url=gw.base_url, headers=headers, timeout=20) as c:
            long = await c.post("/v1/chat/completions", json={**CHAT, "model": "m" * 5000})
            assert long.status_code == 400, long.text
            assert long.json()["error"]["param"] == "model"
            for _ in range(3):
                assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
            assert await _wait_count(dsn, 4) == 4

            private_postgres.stop()
            for i in range(20):
                resp = await c.post("/v1/chat/completions", json={**CHAT, "user": f"o{i}"})
                assert resp.status_code == 200, resp.text  # no database on the request path
            await asyncio.sleep(1.5)  # several flush intervals with the database down
            private_postgres.start()
            assert await _wait_count(dsn, 24) == 24
            assert await _count(dsn, "end_user LIKE 'o%'") == 20
        log = gw.proc.log()
    finally:
        gw.proc.terminate()
    usage_lines = [line for line in log.splitlines() if "usage database" in line]
    assert len(usage_lines) == 2, usage_lines
    assert "unreachable" in usage_lines[0] and "WARNING" in usage_lines[0]
    assert "reachable again" in usage_lines[1] and "20 usage rows that waited" in usage_lines[1]
