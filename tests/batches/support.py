"""A gateway in process with batches on, over the in-process files fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from sluice.app import SluiceApp
from sluice.auth.principal import MASTER, Principal
from sluice.clock import Clock
from sluice.config.loader import parse_config
from sluice.files.in_memory import InMemoryFiles
from sluice.settings import Settings
from tests.integration.conftest import MASTER as MASTER_KEY

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    deployments: [{provider: mock, model: chat}]
    prices: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
  - name: mock-embed
    deployments: [{provider: mock, model: "embed?dim=4"}]
  - name: slow
    deployments: [{provider: mock, model: "chat?latency_ms=150"}]
    prices: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
  - name: refusing
    deployments: [{provider: mock, model: "chat?status=400"}]
batches:
  poll_interval_s: 0.02
"""
ENDED = ("completed", "failed", "expired", "cancelled")


@asynccontextmanager
async def gateway(
    settings: Settings,
    config: str = CONFIG,
    *,
    clock: Clock | None = None,
    files: InMemoryFiles | None = None,
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient, InMemoryFiles]]:
    files = files or InMemoryFiles()
    app = SluiceApp(settings, parse_config(config, source="test.yaml"), clock=clock, files=files)
    await app.startup()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gw",
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
        ) as client:
            yield app, client, files
    finally:
        await app.shutdown()


def line(custom_id: str, model: str = "mock-gpt", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {**body, **extra},
    }


def jsonl(items: list[Any]) -> bytes:
    return b"".join(orjson.dumps(i) + b"\n" for i in items)


async def upload(files: InMemoryFiles, principal: Principal | None, data: bytes) -> str:
    record = await files.create(
        principal or MASTER, purpose="batch", filename="in.jsonl", data=data
    )
    return record.id


async def key(client: httpx.AsyncClient, **body: Any) -> tuple[dict[str, str], str]:
    """A new key: its auth header and id."""
    made = await client.post("/api/v1/keys", json={"name": "k", **body})
    assert made.status_code == 201, made.text
    data = made.json()
    return {"Authorization": f"Bearer {data['key']}"}, data["id"]


def principal(app: SluiceApp, key_id: str) -> Principal:
    assert app.runtime is not None
    found = app.runtime.keys.active_principal(key_id)
    assert found is not None
    return found


async def create(
    client: httpx.AsyncClient, file_id: str, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    return await client.post("/v1/batches", json={**body, **extra}, headers=headers)


async def until(
    client: httpx.AsyncClient,
    batch_id: str,
    done: Any = lambda b: b["status"] in ENDED,
    headers: dict[str, str] | None = None,
    *,
    limit_s: float = 20.0,
) -> dict[str, Any]:
    """Poll the batch until ``done(batch)``; fails after ``limit_s``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while True:
        got = await client.get(f"/v1/batches/{batch_id}", headers=headers)
        assert got.status_code == 200, got.text
        batch: dict[str, Any] = got.json()
        if done(batch):
            return batch
        assert loop.time() < end, f"batch never reached the state: {batch}"
        await asyncio.sleep(0.02)


def lines_of(files: InMemoryFiles, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [orjson.loads(x) for x in files.data[file_id].splitlines() if x.strip()]


async def usage_rows(app: SluiceApp, batch_id: str) -> list[Any]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return [r for r in await rt.storage.usage.recent(limit=10_000) if r.batch_id == batch_id]
