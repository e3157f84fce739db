"""``sluice prices check`` lists the deployments charged at 0 (file and stored models);
``sluice config export`` writes the stored entries as config YAML."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sluice.cli import app
from tests.integration.conftest import make_settings, running

CONFIG = """
providers:
  mock: {type: mock}
  openai: {type: openai, api_key: env:NOT_SET_ANYWHERE}
models:
  - name: priced-by-table
    deployments: [{provider: openai, model: gpt-4o-mini}]
  - name: priced-by-file
    prices: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}
    deployments: [{provider: mock, model: chat}]
  - name: unpriced-mock
    deployments: [{provider: mock, model: chat}]
"""


async def _store(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        made = await client.post(
            "/api/v1/models",
            json={"name": "stored-free", "deployments": [{"provider": "mock", "model": "x"}]},
        )
        assert made.status_code == 201, made.text


def test_prices_check_and_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
    config = tmp_path / "sluice.yaml"
    config.write_text(CONFIG)
    asyncio.run(_store(tmp_path))

    result = CliRunner().invoke(app, ["prices", "check", "--config", str(config)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["unpriced-mock", "stored-free"]

    only_file = CliRunner().invoke(app, ["prices", "check", "--config", str(config), "--no-stored"])
    assert only_file.exit_code == 1 and "stored-free" not in only_file.output

    exported = CliRunner().invoke(app, ["config", "export"])
    assert exported.exit_code == 0, exported.output
    assert yaml.safe_load(exported.output) == {
        "models": [{"name": "stored-free", "deployments": [{"provider": "mock", "model": "x"}]}]
    }
