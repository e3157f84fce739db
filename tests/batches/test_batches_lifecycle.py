"""A batch's life beyond the happy path: paused for budget and resumed, waiting on a rate
limit, cancelled, expired, and resumed after a restart with no line lost or doubled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice.clock import FakeClock
from sluice.files.in_memory import InMemoryFiles
from tests.batches.support import (
    CONFIG,
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
from tests.integration.conftest import make_settings

ONE_AT_A_TIME = CONFIG.replace(
    "poll_interval_s: 0.02", "poll_interval_s: 0.02\n  concurrency_per_batch: 1"
)


async def _cost(app: object, client: object) -> int:
    done = await client.post(  # type: ignore[attr-defined]
        "/v1/chat/completions", json=line("x")["body"]
    )
    assert done.status_code == 200
    rt = app.runtime  # type: ignore[attr-defined]
    await rt.usage.flush()
    cost = (await rt.storage.usage.recent(limit=1))[0].cost_micros
    assert cost
    return int(cost)


async def test_a_batch_out_of_budget_pauses_and_resumes_when_raised(tmp_path: Path) -> None:
    clock = FakeClock()
    async with gateway(make_settings(tmp_path), clock=clock) as (app, client, files):
        cost = await _cost(app, client)
        auth, key_id = await key(client, budget={"usd": (2 * cost + cost // 2) / 1e6})
        data = jsonl([line(f"c{i}") for i in range(6)])
        made = await create(client, await upload(files, principal(app, key_id), data), auth)
        assert made.status_code == 200, made.text
        batch_id = made.json()["id"]
        paused = await until(
            client,
            batch_id,
            lambda b: b["sluice_paused"] == "budget" and b["request_counts"]["completed"] == 2,
            auth,
        )
        assert paused["status"] == "in_progress"
        assert paused["request_counts"]["failed"] == 0
        assert paused["sluice_resume_at"] == int(clock.now() + 60)
        raised = await client.patch(f"/api/v1/keys/{key_id}", json={"budget": {"usd": 100.0}})
        assert raised.status_code == 200, raised.text
        clock.advance(61)
        done = await until(client, batch_id, headers=auth)
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
        assert done["sluice_paused"] is None
        assert len(lines_of(files, done["output_file_id"])) == 6
        rows = await usage_rows(app, batch_id)
        assert len(rows) == 6  # a refusal that the line waited out is not a row
        assert all(r.status == 200 for r in rows)


async def test_a_rate_limited_line_waits_instead_of_failing(tmp_path: Path) -> None:
    clock = FakeClock()
    async with gateway(make_settings(tmp_path), clock=clock) as (app, client, files):
        auth, key_id = await key(client, limits={"rpm": 2})
        data = jsonl([line(f"c{i}") for i in range(4)])
        made = await create(client, await upload(files, principal(app, key_id), data), auth)
        batch_id = made.json()["id"]
        waiting = await until(
            client,
            batch_id,
            lambda b: b["sluice_paused"] == "rate_limit" and b["request_counts"]["completed"] == 2,
            auth,
        )
        assert waiting["request_counts"]["failed"] == 0
        assert waiting["sluice_resume_at"] > clock.now()
        clock.advance(180)  # past the sliding window's previous minute too
        done = await until(client, batch_id, headers=auth)
        assert done["request_counts"] == {"total": 4, "completed": 4, "failed": 0}


async def test_cancel_stops_new_lines_and_keeps_what_ran(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path), ONE_AT_A_TIME) as (app, client, files):
        data = jsonl([line(f"c{i}", model="slow") for i in range(8)])
        made = await create(client, await upload(files, None, data))
        batch_id = made.json()["id"]
        await until(client, batch_id, lambda b: b["request_counts"]["completed"] >= 1)
        cancelling = await client.post(f"/v1/batches/{batch_id}/cancel")
        assert cancelling.status_code == 200
        assert cancelling.json()["status"] in ("cancelling", "finalizing", "cancelled")
        assert cancelling.json()["cancelling_at"] is not None
        done = await until(client, batch_id)
        assert done["status"] == "cancelled"
        assert done["cancelled_at"] is not None
        completed = done["request_counts"]["completed"]
        assert 1 <= completed < 8
        out = lines_of(files, done["output_file_id"])
        assert len(out) == completed
        assert done["error_file_id"] is None
        assert len(await usage_rows(app, batch_id)) == completed
        again = await client.post(f"/batches/{batch_id}/cancel")
        assert again.status_code == 200
        assert again.json()["status"] == "cancelled"


async def test_an_expired_batch_keeps_its_partial_output(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path)
    async with gateway(settings, ONE_AT_A_TIME, clock=clock) as (_, client, files):
        data = jsonl([line(f"c{i}", model="slow") for i in range(8)])
        made = await create(client, await upload(files, None, data))
        batch_id = made.json()["id"]
        await until(client, batch_id, lambda b: b["request_counts"]["completed"] >= 1)
        clock.advance(24 * 3600 + 1)
        done = await until(client, batch_id)
        assert done["status"] == "expired"
        assert done["expired_at"] is not None
        counts = done["request_counts"]
        assert counts["completed"] + counts["failed"] == 8
        assert 1 <= counts["completed"] < 8
        out = lines_of(files, done["output_file_id"])
        errors = lines_of(files, done["error_file_id"])
        assert len(out) == counts["completed"]
        assert len(errors) == counts["failed"]
        assert {e["error"]["code"] for e in errors} == {"batch_expired"}
        assert {o["custom_id"] for o in out}.isdisjoint(e["custom_id"] for e in errors)


async def test_a_restart_mid_batch_loses_and_doubles_no_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    files = InMemoryFiles()
    data = jsonl([line(f"c{i}", model="slow") for i in range(6)])
    async with gateway(settings, ONE_AT_A_TIME, files=files) as (_, client, _):
        made = await create(client, await upload(files, None, data))
        batch_id = made.json()["id"]
        await until(client, batch_id, lambda b: b["request_counts"]["completed"] >= 2)
    async with gateway(settings, ONE_AT_A_TIME, files=files) as (app, client, _):
        middle = (await client.get(f"/v1/batches/{batch_id}")).json()
        assert 2 <= middle["request_counts"]["completed"] < 6
        done = await until(client, batch_id)
        assert done["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
        out = lines_of(files, done["output_file_id"])
        assert sorted(o["custom_id"] for o in out) == [f"c{i}" for i in range(6)]
        rows = await usage_rows(app, batch_id)
        assert len(rows) == 6
        assert len({r.request_id for r in rows}) == 6


async def test_a_result_write_that_fails_is_retried_after_its_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    async with gateway(make_settings(tmp_path), clock=clock) as (app, client, files):
        assert app.runtime is not None
        store = app.runtime.storage.batches
        real = store.finish
        failed: list[int] = []

        async def flaky(batch_id: str, line: int, **kw: Any) -> bool:
            if not failed:
                failed.append(line)
                raise OSError("the database went away")
            return await real(batch_id, line, **kw)

        monkeypatch.setattr(store, "finish", flaky)
        data = jsonl([line(f"c{i}") for i in range(3)])
        batch_id = (await create(client, await upload(files, None, data))).json()["id"]
        await until(client, batch_id, lambda b: b["request_counts"]["completed"] == 2)
        clock.advance(121)  # the lease of the line whose result was not written expires
        done = await until(client, batch_id)
        assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
        out = lines_of(files, done["output_file_id"])
        assert sorted(o["custom_id"] for o in out) == ["c0", "c1", "c2"]
        assert len(await usage_rows(app, batch_id)) == 3
