"""Batches delegated to a provider's batch API (``batch.mode: delegate``), over ``sluice
mock-upstream`` as a real HTTP server: the openai SDK end to end, Anthropic Message
Batches, a line the provider failed in the error file, cancel mid-way, a restart while the
upstream batch runs, a budget too small for the submission."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import orjson
import pytest

from sluice.app import SluiceApp
from sluice.clock import FakeClock
from sluice.config.loader import ConfigError, parse_config
from sluice.files.in_memory import InMemoryFiles
from sluice.storage.batches import StoredBatch
from tests.batches.support import (
    create,
    gateway,
    jsonl,
    key,
    line,
    lines_of,
    principal,
    until,
    upload,
    usage_rows,
)
from tests.integration.conftest import MASTER, make_settings
from tests.mock_upstream import mock_upstream

DELEGATED = """
providers:
  oa: {{type: openai_compatible, base_url: "{base}/v1", api_key: sk-up}}
  slow: {{type: openai_compatible, base_url: "{base}/v1", api_key: sk-up,
          headers: {{x-mock-batch-per-poll: "1"}}}}
  an: {{type: anthropic, base_url: "{base}", api_key: sk-up}}
  failing: {{type: openai_compatible, base_url: "{base}/v1", api_key: sk-up,
             headers: {{x-mock-batch-fail: "1"}}}}
models:
  - name: gpt-b
    deployments:
      - {{provider: oa, model: "chat?completion_tokens=5",
         batch: {{mode: delegate, poll_interval_s: 0.01}}}}
    prices: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
  - name: gpt-slow
    deployments:
      - {{provider: slow, model: chat, batch: {{mode: delegate, poll_interval_s: {slow_s}}}}}
    prices: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
  - name: claude-b
    deployments:
      - {{provider: an, model: "claude?completion_tokens=4",
         batch: {{mode: delegate, discount: 0.4, poll_interval_s: 0.01}}}}
    prices: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
  - name: gpt-fail
    deployments:
      - {{provider: failing, model: chat, batch: {{mode: delegate, poll_interval_s: 0.01}}}}
batches:
  poll_interval_s: 0.02
"""


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    async with mock_upstream() as base:
        yield base


def _config(base: str, *, slow_s: float = 3600) -> str:
    return DELEGATED.format(base=base, slow_s=slow_s)


async def _stored(app: SluiceApp, batch_id: str) -> StoredBatch:
    assert app.runtime is not None
    batch = await app.runtime.storage.batches.get(batch_id)
    assert batch is not None
    return batch


async def _submitted(app: SluiceApp, client: httpx.AsyncClient, batch_id: str) -> StoredBatch:
    await until(client, batch_id, lambda b: True)
    for _ in range(500):
        batch = await _stored(app, batch_id)
        if batch.upstream_id is not None:
            return batch
        await until(client, batch_id, lambda b: True)
    raise AssertionError("the batch was never submitted upstream")


def _priced(row: Any, discount: float) -> tuple[int, int]:
    full = row.prompt_tokens * 1 + row.completion_tokens * 2  # micro-USD at 1 and 2 $/Mtok
    charged = round(full * (1 - discount))
    return charged, full - charged


@asynccontextmanager
async def _sdk(tmp_path: Path, config: str) -> AsyncIterator[tuple[SluiceApp, openai.AsyncOpenAI]]:
    """A gateway with its own files API (the SDK uploads through ``/v1/files``)."""
    app = SluiceApp(make_settings(tmp_path), parse_config(config, source="t.yaml"))
    await app.startup()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    try:
        yield (
            app,
            openai.AsyncOpenAI(
                api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
            ),
        )
    finally:
        await http.aclose()
        await app.shutdown()


async def test_the_openai_sdk_runs_a_batch_delegated_to_openai_batch(
    tmp_path: Path, upstream: str
) -> None:
    fails = [{"role": "user", "content": "mock_batch_line=fail"}]
    data = jsonl([line("a", "gpt-b"), line("b", "gpt-b", messages=fails), line("c", "gpt-b")])
    async with _sdk(tmp_path, _config(upstream)) as (app, sdk):
        uploaded = await sdk.files.create(file=("in.jsonl", data), purpose="batch")
        batch = await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        for _ in range(1000):
            batch = await sdk.batches.retrieve(batch.id)
            if batch.status == "completed":
                break
            await asyncio.sleep(0.02)
        assert batch.status == "completed"
        assert batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
        assert batch.output_file_id is not None and batch.error_file_id is not None
        out = [
            orjson.loads(x)
            for x in (await sdk.files.content(batch.output_file_id)).text.splitlines()
        ]
        err = [
            orjson.loads(x)
            for x in (await sdk.files.content(batch.error_file_id)).text.splitlines()
        ]
        assert [x["custom_id"] for x in out] == ["a", "c"]
        assert all(x["response"]["status_code"] == 200 for x in out)
        assert out[0]["response"]["body"]["object"] == "chat.completion"
        assert out[0]["response"]["body"]["model"] == "gpt-b"  # the name asked for
        assert [x["custom_id"] for x in err] == ["b"]
        assert err[0]["response"]["status_code"] == 400
        assert "this line fails" in err[0]["response"]["body"]["error"]["message"]
        stored = await _stored(app, batch.id)
        assert stored.delegate == "oa/chat?completion_tokens=5"
        assert stored.upstream_id is not None
        assert stored.upstream_status == "collected"
        rows = {r.request_id: r for r in await usage_rows(app, batch.id)}
        assert len(rows) == 3
        assert {x["response"]["request_id"] for x in out + err} == set(rows)
        for row in rows.values():
            assert row.batch_id == batch.id
            assert row.deployment == "oa/chat?completion_tokens=5"
        ok = [r for r in rows.values() if r.status == 200]
        assert len(ok) == 2
        for row in ok:
            assert row.completion_tokens == 5
            assert (row.cost_micros, row.cost_saved_micros) == _priced(row, 0.5)
            assert row.cost_saved_micros > 0
        [failed] = [r for r in rows.values() if r.status != 200]
        assert failed.status == 400
        assert failed.cost_micros == 0


async def test_a_batch_delegated_to_anthropic_message_batches(
    tmp_path: Path, upstream: str
) -> None:
    async with gateway(make_settings(tmp_path), _config(upstream)) as (app, client, files):
        data = jsonl(
            [
                line("x1", "claude-b"),
                line(
                    "x2", "claude-b", messages=[{"role": "user", "content": "mock_batch_line=fail"}]
                ),
            ]
        )
        made = await create(client, await upload(files, None, data))
        assert made.status_code == 200, made.text
        done = await until(client, made.json()["id"])
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
        [ok] = lines_of(files, done["output_file_id"])
        assert ok["custom_id"] == "x1"
        body = ok["response"]["body"]
        assert body["object"] == "chat.completion"  # the message translated to OpenAI's shape
        assert body["choices"][0]["message"]["content"]
        [bad] = lines_of(files, done["error_file_id"])
        assert bad["custom_id"] == "x2" and bad["response"]["status_code"] == 400
        rows = await usage_rows(app, done["id"])
        assert len(rows) == 2
        [row] = [r for r in rows if r.status == 200]
        assert row.completion_tokens == 4
        assert (row.cost_micros, row.cost_saved_micros) == _priced(row, 0.4)


async def test_cancel_mid_way_forwards_the_cancel_and_keeps_partial_results(
    tmp_path: Path, upstream: str
) -> None:
    async with gateway(make_settings(tmp_path), _config(upstream)) as (app, client, files):
        data = jsonl([line(f"s{i}", "gpt-slow") for i in range(5)])
        made = await create(client, await upload(files, None, data))
        assert made.status_code == 200, made.text
        batch_id = made.json()["id"]
        stored = await _submitted(app, client, batch_id)
        # The deployment polls once an hour: this poll answers one line upstream.
        async with aiohttp.ClientSession() as s:
            got = await s.get(
                f"{upstream}/v1/batches/{stored.upstream_id}",
                headers={"Authorization": "Bearer sk-up"},
            )
            assert got.status == 200
            assert (await got.json())["request_counts"]["completed"] == 1
        cancelled = await client.post(f"/v1/batches/{batch_id}/cancel")
        assert cancelled.status_code == 200
        done = await until(client, batch_id)
        assert done["status"] == "cancelled"
        assert done["request_counts"] == {"total": 5, "completed": 1, "failed": 0}
        assert [x["custom_id"] for x in lines_of(files, done["output_file_id"])] == ["s0"]
        assert done["error_file_id"] is None
        assert len(await usage_rows(app, batch_id)) == 1
        async with aiohttp.ClientSession() as s:
            upstream_state = await s.get(
                f"{upstream}/v1/batches/{stored.upstream_id}",
                headers={"Authorization": "Bearer sk-up"},
            )
            assert (await upstream_state.json())["status"] == "cancelled"


async def test_a_restart_while_the_upstream_batch_runs_resumes_polling(
    tmp_path: Path, upstream: str
) -> None:
    settings = make_settings(tmp_path)
    files = InMemoryFiles()
    data = jsonl([line(f"r{i}", "gpt-slow") for i in range(3)])
    async with gateway(settings, _config(upstream), files=files) as (app, client, _):
        made = await create(client, await upload(files, None, data))
        assert made.status_code == 200, made.text
        batch_id = made.json()["id"]
        before = await _submitted(app, client, batch_id)
    # The next process polls at once (per poll one line: three polls, 0.01 s apart).
    async with gateway(settings, _config(upstream, slow_s=0.01), files=files) as (
        app,
        client,
        _,
    ):
        done = await until(client, batch_id)
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
        after = await _stored(app, batch_id)
        assert after.upstream_id == before.upstream_id  # polled, not submitted again
        out = lines_of(files, done["output_file_id"])
        assert sorted(x["custom_id"] for x in out) == ["r0", "r1", "r2"]
        rows = await usage_rows(app, batch_id)
        assert len(rows) == 3
        assert len({r.request_id for r in rows}) == 3


async def test_a_budget_too_small_for_the_submission_pauses_the_batch(
    tmp_path: Path, upstream: str
) -> None:
    clock = FakeClock()
    async with gateway(make_settings(tmp_path), _config(upstream), clock=clock) as (
        app,
        client,
        files,
    ):
        auth, key_id = await key(client, budget={"usd": 0.00001})  # 10 micro-USD
        data = jsonl([line(f"b{i}", "gpt-b") for i in range(3)])
        made = await create(client, await upload(files, principal(app, key_id), data), auth)
        assert made.status_code == 200, made.text
        batch_id = made.json()["id"]
        paused = await until(client, batch_id, lambda b: b["sluice_paused"] == "budget", auth)
        assert paused["status"] == "in_progress"
        assert paused["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
        assert (await _stored(app, batch_id)).upstream_id is None  # nothing sent
        assert await usage_rows(app, batch_id) == []
        raised = await client.patch(f"/api/v1/keys/{key_id}", json={"budget": {"usd": 10.0}})
        assert raised.status_code == 200, raised.text

        def ended(batch: dict[str, Any]) -> bool:
            clock.advance(61)  # past budget_retry_s, then past each poll interval
            return batch["status"] == "completed"

        done = await until(client, batch_id, ended, auth)
        assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
        assert done["sluice_paused"] is None
        rows = await usage_rows(app, batch_id)
        assert len(rows) == 3
        assert all(r.cost_micros == _priced(r, 0.5)[0] for r in rows)
        assert app.runtime is not None
        [(scope, spec)] = principal(app, key_id).budget_checks
        # The hold of the whole submission was settled with what the lines cost.
        assert await app.runtime.budgets.spent(scope, spec) == sum(r.cost_micros for r in rows)


async def test_the_completion_window_expires_a_delegated_batch_keeping_its_output(
    tmp_path: Path, upstream: str
) -> None:
    clock = FakeClock()
    async with gateway(make_settings(tmp_path), _config(upstream), clock=clock) as (
        app,
        client,
        files,
    ):
        data = jsonl([line(f"e{i}", "gpt-slow") for i in range(3)])
        made = await create(client, await upload(files, None, data))
        assert made.status_code == 200, made.text
        batch_id = made.json()["id"]
        stored = await _submitted(app, client, batch_id)
        async with aiohttp.ClientSession() as s:  # one line answered upstream
            got = await s.get(
                f"{upstream}/v1/batches/{stored.upstream_id}",
                headers={"Authorization": "Bearer sk-up"},
            )
            assert got.status == 200
        clock.advance(24 * 3600 + 1)
        done = await until(client, batch_id)
        assert done["status"] == "expired"
        assert [x["custom_id"] for x in lines_of(files, done["output_file_id"])] == ["e0"]
        expired = lines_of(files, done["error_file_id"])
        assert [x["custom_id"] for x in expired] == ["e1", "e2"]
        assert {x["error"]["code"] for x in expired} == {"batch_expired"}
        assert done["request_counts"] == {"total": 3, "completed": 1, "failed": 2}
        assert len(await usage_rows(app, batch_id)) == 1


async def test_a_batch_of_several_models_runs_in_sluice(tmp_path: Path, upstream: str) -> None:
    async with gateway(make_settings(tmp_path), _config(upstream)) as (app, client, files):
        data = jsonl([line("m1", "gpt-b"), line("m2", "claude-b")])
        made = await create(client, await upload(files, None, data))
        assert made.status_code == 200, made.text
        done = await until(client, made.json()["id"])
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
        stored = await _stored(app, done["id"])
        assert stored.delegate is None and stored.upstream_id is None
        rows = await usage_rows(app, done["id"])
        assert all(r.cost_saved_micros is None for r in rows)  # live prices


def test_only_a_provider_type_with_a_batch_api_may_delegate() -> None:
    config = """
providers:
  m: {type: mock}
models:
  - name: x
    deployments: [{provider: m, model: chat, batch: {mode: delegate}}]
"""
    with pytest.raises(ConfigError, match=r"models\[0\]\.deployments\[0\]\.batch\.mode"):
        parse_config(config, source="t.yaml")
    with pytest.raises(ConfigError, match="discount"):
        parse_config(
            config.replace(
                "type: mock", "type: openai_compatible, base_url: 'http://x/v1'"
            ).replace("mode: delegate", "mode: delegate, discount: 1.5"),
            source="t.yaml",
        )


async def test_a_key_that_lost_the_model_before_submission_fails_every_line(
    tmp_path: Path, upstream: str
) -> None:
    clock = FakeClock()
    async with gateway(make_settings(tmp_path), _config(upstream), clock=clock) as (
        app,
        client,
        files,
    ):
        auth, key_id = await key(client, models=["gpt-b"], budget={"usd": 0.00001})
        data = jsonl([line(f"k{i}", "gpt-b") for i in range(2)])
        made = await create(client, await upload(files, principal(app, key_id), data), auth)
        assert made.status_code == 200, made.text
        batch_id = made.json()["id"]
        await until(client, batch_id, lambda b: b["sluice_paused"] == "budget", auth)
        changed = await client.patch(
            f"/api/v1/keys/{key_id}", json={"models": ["claude-b"], "budget": {"usd": 10.0}}
        )
        assert changed.status_code == 200, changed.text

        def ended(batch: dict[str, Any]) -> bool:
            clock.advance(61)
            return batch["status"] == "completed"

        done = await until(client, batch_id, ended, auth)
        assert done["request_counts"] == {"total": 2, "completed": 0, "failed": 2}
        errors = lines_of(files, done["error_file_id"])
        assert [x["custom_id"] for x in errors] == ["k0", "k1"]
        assert all(x["response"] is None and "gpt-b" in x["error"]["message"] for x in errors)
        assert (await _stored(app, batch_id)).upstream_id is None  # nothing was sent


async def test_a_batch_the_provider_failed_as_a_whole_fails_every_line(
    tmp_path: Path, upstream: str
) -> None:
    async with gateway(make_settings(tmp_path), _config(upstream)) as (app, client, files):
        data = jsonl([line(f"f{i}", "gpt-fail") for i in range(2)])
        made = await create(client, await upload(files, None, data))
        assert made.status_code == 200, made.text
        done = await until(client, made.json()["id"])
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 2, "completed": 0, "failed": 2}
        assert done["output_file_id"] is None
        errors = lines_of(files, done["error_file_id"])
        assert [x["custom_id"] for x in errors] == ["f0", "f1"]
        assert {x["error"]["code"] for x in errors} == {"upstream_batch_failed"}
        assert {x["error"]["message"] for x in errors} == {"mock upstream: the batch failed"}
        assert await usage_rows(app, done["id"]) == []  # no answer, no row
