"""Two ``sluice serve`` processes sharing PostgreSQL and Redis: a budget raced from both
admits exactly what fits, and the recorded spend equals the admitted requests' costs."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
import httpx

from tests.e2e.support import Proc, base_env, free_port, spawn

CHAT = {"model": "priced", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def _config(mock_port: int) -> str:
    return f"""
providers:
  up: {{type: openai_compatible, base_url: "http://127.0.0.1:{mock_port}/v1", api_key: sk-up}}
models:
  - name: priced
    deployments: [{{provider: up, model: chat}}]
    prices: {{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}
"""


def _start(workdir: Path, env: dict[str, str], config: Path) -> tuple[Proc, int]:
    port = free_port()
    proc = spawn(
        "gateway",
        ["serve", "--port", str(port), "--config", str(config)],
        env,
        workdir / f"gateway-{port}.log",
    )
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/health/ready")
    except BaseException:
        proc.kill()
        raise
    return proc, port


async def _rows(url: str, key_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(
            await conn.fetch(
                "SELECT status, cost_micros FROM usage_events WHERE key_id = $1", key_id
            )
        )
    finally:
        await conn.close()


async def test_budget_race_across_two_processes(
    tmp_path: Path, mock_port: int, postgres_url: str, redis_url: str
) -> None:
    master = "sk-master-" + secrets.token_hex(16)
    env = base_env(
        tmp_path / "data", master, SLUICE_DATABASE_URL=postgres_url, SLUICE_REDIS_URL=redis_url
    )
    config = tmp_path / "sluice.yaml"
    config.write_text(_config(mock_port))
    a, port_a = _start(tmp_path, env, config)
    b, port_b = _start(tmp_path, env, config)
    try:
        admin = {"Authorization": f"Bearer {master}"}
        async with httpx.AsyncClient(timeout=20) as client:
            probe = await client.post(
                f"http://127.0.0.1:{port_a}/v1/chat/completions", json=CHAT, headers=admin
            )
            assert probe.status_code == 200
            cost = 0
            for _ in range(50):
                rows = await _rows(postgres_url, "master")
                if rows:
                    cost = int(rows[0]["cost_micros"])
                    break
                await asyncio.sleep(0.1)
            assert cost > 0
            made = await client.post(
                f"http://127.0.0.1:{port_a}/api/v1/keys",
                headers=admin,
                json={
                    "name": "raced",
                    "budget": {"usd": (10 * cost + cost // 2) / 1e6, "period": "day"},
                },
            )
            key = made.json()
            auth = {"Authorization": f"Bearer {key['key']}"}
            for port in (port_a, port_b):  # both processes know the key (Redis broadcast)
                for _ in range(50):
                    seen = await client.get(f"http://127.0.0.1:{port}/v1/models", headers=auth)
                    if seen.status_code == 200:
                        break
                    await asyncio.sleep(0.05)
            results = await asyncio.gather(
                *(
                    client.post(
                        f"http://127.0.0.1:{(port_a, port_b)[i % 2]}/v1/chat/completions",
                        json=CHAT,
                        headers=auth,
                    )
                    for i in range(50)
                )
            )
        codes = [r.status_code for r in results]
        assert codes.count(200) == 10, codes
        assert codes.count(429) == 40
    finally:
        for proc in (a, b):
            proc.terminate()
    rows = await _rows(postgres_url, key["id"])
    assert len(rows) == 50  # one row per request, from both processes, flushed on SIGTERM
    admitted = [r for r in rows if r["status"] == 200]
    assert len(admitted) == 10
    assert sum(int(r["cost_micros"]) for r in admitted) == 10 * cost
    assert all(r["cost_micros"] is None for r in rows if r["status"] == 429)
