"""``sluice batches list|cancel`` against a running gateway's database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from tests.batches.support import CONFIG, create, gateway, jsonl, line, until, upload
from tests.integration.conftest import make_settings


async def _cli(*args: str) -> str:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def test_list_and_cancel_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
    config = CONFIG.replace(
        "poll_interval_s: 0.02", "poll_interval_s: 0.02\n  concurrency_per_batch: 1"
    )
    async with gateway(settings, config) as (_, client, files):
        data = jsonl([line(f"c{i}", model="slow") for i in range(20)])
        batch_id = (await create(client, await upload(files, None, data))).json()["id"]
        listed = json.loads(await _cli("batches", "list", "--json"))
        assert [b["id"] for b in listed] == [batch_id]
        assert listed[0]["request_counts"]["total"] == 20
        assert batch_id in await _cli("batches", "list")
        assert json.loads(await _cli("batches", "list", "--user", "u_nobody", "--json")) == []
        assert "cancelling" in await _cli("batches", "cancel", batch_id)
        done = await until(client, batch_id)
        assert done["status"] == "cancelled"
        assert done["request_counts"]["completed"] < 20
        missing = await asyncio.to_thread(CliRunner().invoke, app, ["batches", "cancel", "nope"])
        assert missing.exit_code == 1
        assert "no batch 'nope'" in missing.output
