"""Batches against real ``sluice serve`` processes: the openai SDK end to end (upload,
create, poll, download, cancel, list), and two processes on PostgreSQL sharing one batch,
one of them killed mid-batch: every line in the output exactly once; two processes sharing
a batch delegated to the provider's batch API (the mock upstream's): submitted once, one
usage row per line at the discounted price."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path
from typing import Any

import asyncpg
import openai
import pytest

from tests.e2e.support import Proc, base_env, serve_until_ready

ENDED = ("completed", "failed", "expired", "cancelled")


def _jsonl(model: str, n: int, prefix: str = "c") -> bytes:
    rows = [
        {
            "custom_id": f"{prefix}{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}],
            },
        }
        for i in range(n)
    ]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


async def _ended(client: openai.AsyncOpenAI, batch_id: str, *, limit_s: float = 60.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ENDED:
            return batch
        assert loop.time() < end, f"batch did not end: {batch}"
        await asyncio.sleep(0.1)


async def test_the_openai_sdk_runs_a_batch_end_to_end(aclient: openai.AsyncOpenAI) -> None:
    uploaded = await aclient.files.create(
        file=("requests.jsonl", _jsonl("m-chat", 5)), purpose="batch"
    )
    batch = await aclient.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "e2e"},
    )
    assert batch.status == "in_progress"
    assert batch.request_counts is not None and batch.request_counts.total == 5
    done = await _ended(aclient, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.completed == 5
    assert done.output_file_id is not None and done.error_file_id is None
    content = await aclient.files.content(done.output_file_id)
    lines = [json.loads(x) for x in content.text.splitlines()]
    assert sorted(x["custom_id"] for x in lines) == [f"c{i}" for i in range(5)]
    assert all(x["response"]["status_code"] == 200 for x in lines)

    slow = await aclient.files.create(
        file=("slow.jsonl", _jsonl("m-slow", 40, "s")), purpose="batch"
    )
    running = await aclient.batches.create(
        input_file_id=slow.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelling = await aclient.batches.cancel(running.id)
    assert cancelling.status in ("cancelling", "finalizing", "cancelled")
    cancelled = await _ended(aclient, running.id)
    assert cancelled.status == "cancelled"
    assert cancelled.request_counts is not None and cancelled.request_counts.completed < 40

    listed = [b.id async for b in aclient.batches.list(limit=1)]
    assert {batch.id, running.id} <= set(listed)

    bad = await aclient.files.create(file=("bad.jsonl", b'{"custom_id": "x"}\n'), purpose="batch")
    with pytest.raises(openai.BadRequestError, match=r"line 1 \(custom_id 'x'\)"):
        await aclient.batches.create(
            input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        await aclient.batches.retrieve("batch_missing")


def _config(mock_port: int) -> str:
    return f"""
providers:
  up: {{type: openai_compatible, base_url: "http://127.0.0.1:{mock_port}/v1", api_key: sk-up}}
models:
  - name: paced
    deployments: [{{provider: up, model: "chat?latency_ms=100"}}]
    prices: {{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}
batches:
  poll_interval_s: 0.2
  concurrency_per_batch: 2
  lease_s: 2
"""


async def _pg(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_two_processes_share_a_batch_and_one_may_crash(
    tmp_path: Path, mock_port: int, postgres_url: str
) -> None:
    master = "sk-master-" + secrets.token_hex(16)
    env = base_env(tmp_path / "data", master, SLUICE_DATABASE_URL=postgres_url)
    config = tmp_path / "sluice.yaml"
    config.write_text(_config(mock_port))
    a, port_a = serve_until_ready(tmp_path, config, env, name="gateway-a")
    b, port_b = serve_until_ready(tmp_path, config, env, name="gateway-b")
    procs: list[Proc] = [a, b]
    try:
        client_a = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port_a}/v1", api_key=master, max_retries=0
        )
        client_b = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port_b}/v1", api_key=master, max_retries=0
        )
        uploaded = await client_a.files.create(
            file=("in.jsonl", _jsonl("paced", 60)), purpose="batch"
        )
        batch = await client_a.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while (await client_b.batches.retrieve(batch.id)).request_counts.completed < 10:  # type: ignore[union-attr]
            assert loop.time() < end
            await asyncio.sleep(0.05)
        owners = await _pg(
            postgres_url, "SELECT DISTINCT owner FROM batch_lines WHERE batch_id = $1", batch.id
        )
        assert len([o for o in owners if o["owner"]]) == 2, "both processes ran lines"
        a.popen.send_signal(signal.SIGKILL)  # a crash: its leases expire, B takes its lines
        a.popen.wait(timeout=10)
        done = await _ended(client_b, batch.id)
        assert done.status == "completed"
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (60, 0)
        assert done.output_file_id is not None
        content = await client_b.files.content(done.output_file_id)
        ids = [json.loads(x)["custom_id"] for x in content.text.splitlines()]
        assert sorted(ids) == sorted(f"c{i}" for i in range(60))  # each line exactly once
        await client_a.close()
        await client_b.close()
    finally:
        for proc in procs:
            if proc.alive():
                proc.terminate()
    rows = await _pg(
        postgres_url, "SELECT request_id FROM usage_events WHERE batch_id = $1", batch.id
    )
    # B's rows are all flushed at its SIGTERM; rows A had not flushed died with it.
    assert len(rows) == len({r["request_id"] for r in rows}) <= 60
    assert len(rows) >= 50


def _delegating_config(mock_port: int) -> str:
    return f"""
providers:
  up: {{type: openai_compatible, base_url: "http://127.0.0.1:{mock_port}/v1", api_key: sk-up,
       headers: {{x-mock-batch-per-poll: "2"}}}}
models:
  - name: deleg
    deployments:
      - {{provider: up, model: "chat?completion_tokens=3",
         batch: {{mode: delegate, poll_interval_s: 0.1}}}}
    prices: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
batches:
  poll_interval_s: 0.05
  lease_s: 2
"""


async def _upstream_batches(mock_port: int) -> list[str]:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        got = await s.get(
            f"http://127.0.0.1:{mock_port}/v1/batches", headers={"Authorization": "Bearer sk-up"}
        )
        return [b["id"] for b in (await got.json())["data"]]


async def test_two_processes_delegate_one_batch_to_the_provider_once(
    tmp_path: Path, mock_port: int, postgres_url: str
) -> None:
    master = "sk-master-" + secrets.token_hex(16)
    env = base_env(tmp_path / "data", master, SLUICE_DATABASE_URL=postgres_url)
    config = tmp_path / "sluice.yaml"
    config.write_text(_delegating_config(mock_port))
    before = await _upstream_batches(mock_port)
    a, port_a = serve_until_ready(tmp_path, config, env, name="gateway-a")
    b, port_b = serve_until_ready(tmp_path, config, env, name="gateway-b")
    try:
        client_a = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port_a}/v1", api_key=master, max_retries=0
        )
        client_b = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port_b}/v1", api_key=master, max_retries=0
        )
        uploaded = await client_a.files.create(
            file=("in.jsonl", _jsonl("deleg", 7, "d")), purpose="batch"
        )
        batch = await client_a.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        done = await _ended(client_b, batch.id)
        assert done.status == "completed"
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (7, 0)
        assert done.output_file_id is not None
        content = await client_b.files.content(done.output_file_id)
        ids = [json.loads(x)["custom_id"] for x in content.text.splitlines()]
        assert sorted(ids) == sorted(f"d{i}" for i in range(7))
        await client_a.close()
        await client_b.close()
    finally:
        for proc in (a, b):
            if proc.alive():
                proc.terminate()
    after = await _upstream_batches(mock_port)
    [upstream_id] = [x for x in after if x not in before]  # submitted once, by one process
    [row] = await _pg(postgres_url, "SELECT upstream_id FROM batches WHERE id = $1", batch.id)
    assert row["upstream_id"] == upstream_id
    rows = await _pg(
        postgres_url,
        "SELECT request_id, cost_micros, cost_saved_micros, prompt_tokens, completion_tokens"
        " FROM usage_events WHERE batch_id = $1",
        batch.id,
    )
    assert len(rows) == len({r["request_id"] for r in rows}) == 7
    for r in rows:
        full = r["prompt_tokens"] + 2 * r["completion_tokens"]
        assert r["cost_micros"] == round(full * 0.5)
        assert r["cost_saved_micros"] == full - r["cost_micros"]
