"""Cedar routing policies in the request path, the explain endpoint and reloads."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app as cli
from tests.integration.conftest import make_settings, running

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def _config(policies: Path) -> str:
    return f"""
routing:
  policies: ["{policies}"]
providers:
  local: {{type: mock}}
  cloud: {{type: openai_compatible, base_url: "https://llm.example.com/v1"}}
models:
  - name: mixed
    strategy: priority
    deployments:
      - {{provider: cloud, model: big, id: cloud-big}}
      - {{provider: local, model: "chat?latency_ms=40", id: local-small}}
  - name: slow-local
    deployments: [{{provider: local, model: "chat?latency_ms=60", id: slow}}]
"""


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(EXAMPLES, target)
    return target


async def test_explain_and_the_example_policies(tmp_path: Path, policies: Path) -> None:
    async with running(make_settings(tmp_path), _config(policies)) as (_, client):
        plain = (await client.post("/api/v1/routing/explain", json={"model": "mixed"})).json()
        assert plain["candidates"] == ["cloud-big", "local-small"]
        assert plain["order"] == ["cloud-big", "local-small"]
        low = (
            await client.post(
                "/api/v1/routing/explain", json={"model": "mixed", "budget_remaining_pct": 10}
            )
        ).json()
        assert low["order"] == ["local-small", "cloud-big"]
        assert low["preferred"] == {"local-small": ["prefer-self-hosted-when-budget-low"]}
        # Give the slow deployment a latency average, then ask with a tighter SLA.
        assert (
            await client.post(
                "/v1/chat/completions",
                json={"model": "slow-local", "messages": [{"role": "user", "content": "hi"}]},
            )
        ).status_code == 200
        tight = (
            await client.post("/api/v1/routing/explain", json={"model": "slow-local", "sla_ms": 10})
        ).json()
        assert tight["order"] == [] and tight["forbidden"] == {"slow": ["forbid-slower-than-sla"]}
        refused = await client.post(
            "/v1/chat/completions",
            json={"model": "slow-local", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-sluice-latency-sla-ms": "10"},
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "no_allowed_deployment"
        relaxed = await client.post(
            "/v1/chat/completions",
            json={"model": "slow-local", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-sluice-latency-sla-ms": "5000"},
        )
        assert relaxed.status_code == 200
        bad = await client.post(
            "/v1/chat/completions",
            json={"model": "slow-local", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-sluice-latency-sla-ms": "soon"},
        )
        assert bad.status_code == 400
        listed = (await client.get("/api/v1/routing/policies")).json()
        assert {p["id"] for p in listed["data"]} >= {"forbid-slower-than-sla", "default-route"}


async def test_reload_through_the_api_and_the_cli(
    tmp_path: Path, policies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    async with running(settings, _config(policies)) as (app, client):
        before = (await client.get("/api/v1/routing/policies")).json()["generation"]
        (policies / "forbid-cloud.cedar").write_text(
            '@id("no-cloud")\nforbid (principal, action == Sluice::Action::"route", resource)\n'
            "when { !resource.self_hosted };\n"
        )
        result = (await client.post("/api/v1/routing/reload")).json()
        assert result["ok"] and "no-cloud" in result["policies"]
        order = (await client.post("/api/v1/routing/explain", json={"model": "mixed"})).json()
        assert order["order"] == ["local-small"]
        (policies / "broken.cedar").write_text("forbid (principal, action, resource) when {")
        failed = (await client.post("/api/v1/routing/reload")).json()
        assert failed["ok"] is False and failed["problems"]
        still = (await client.post("/api/v1/routing/explain", json={"model": "mixed"})).json()
        assert still["order"] == ["local-small"]  # the last good set stays active
        (policies / "broken.cedar").unlink()
        (policies / "forbid-cloud.cedar").unlink()
        rt = app.runtime
        assert rt is not None
        seen = rt.router.policy.generation
        assert seen > before
        # `sluice routing reload` from another process: picked up by polling.
        monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
        done = await asyncio.to_thread(CliRunner().invoke, cli, ["routing", "reload"])
        assert done.exit_code == 0, done.output
        for _ in range(500):  # up to 10 s: a loaded CI host polls late
            if rt.router.policy.generation > seen:
                break
            await asyncio.sleep(0.02)
        order = (await client.post("/api/v1/routing/explain", json={"model": "mixed"})).json()
        assert order["order"] == ["cloud-big", "local-small"]


def test_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cedar"
    bad.write_text("permit (principal, action, resource)\nwhen { resource.nope > 1 };\n")
    result = CliRunner().invoke(cli, ["routing", "check", str(bad)])
    assert result.exit_code == 2 and "bad.cedar" in result.output
    ok = CliRunner().invoke(cli, ["routing", "check", str(EXAMPLES)])
    assert ok.exit_code == 0 and "4 policies" in ok.output
