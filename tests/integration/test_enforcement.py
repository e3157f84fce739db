"""Rate limits and budgets enforced in the request path (memory backends, one process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import make_settings, running

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    deployments: [{provider: mock, model: "chat"}]
    prices: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
  - name: slow
    deployments: [{provider: mock, model: "chat?latency_ms=300"}]
    prices: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
  - name: broken
    deployments: [{provider: mock, model: "chat?status=503"}]
"""
CHAT = {"model": "mock-gpt", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


async def _key(client: httpx.AsyncClient, **body: object) -> dict[str, str]:
    created = await client.post("/api/v1/keys", json={"name": "k", **body})
    assert created.status_code == 201, created.text
    data = created.json()
    return {"Authorization": f"Bearer {data['key']}", "id": data["id"]}


def _auth(key: dict[str, str]) -> dict[str, str]:
    return {"Authorization": key["Authorization"]}


async def _rows(app: SluiceApp) -> list[object]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return list(await rt.storage.usage.recent(limit=1000))


async def test_rpm_limit_answers_429_with_headers_and_consumes_nothing(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        key = await _key(client, limits={"rpm": 2})
        for _ in range(2):
            ok = await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
            assert ok.status_code == 200
            assert ok.headers["x-ratelimit-limit-requests"] == "2"
        refused = await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert f"key {key['id']} rpm 2" in error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        statuses = sorted(r.status for r in await _rows(app))  # type: ignore[attr-defined]
        assert statuses == [200, 200, 429]


async def test_every_exceeded_limit_is_named(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        org = (await client.post("/api/v1/orgs", json={"name": "o"})).json()
        team = (
            await client.post(
                f"/api/v1/orgs/{org['id']}/teams", json={"name": "t", "limits": {"rpm": 1}}
            )
        ).json()
        user = (
            await client.post(
                "/api/v1/users",
                json={"email": "u@x.org", "name": "u", "team_id": team["id"], "limits": {"rpm": 1}},
            )
        ).json()
        key = await _key(client, user_id=user["id"], team_id=team["id"])
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        ).status_code == 200
        refused = await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        message = refused.json()["error"]["message"]
        assert f"team {team['id']} rpm 1" in message and f"user {user['id']} rpm 1" in message


async def test_per_model_limits(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        key = await _key(client, limits={"models": {"mock-gpt": {"rpm": 1}}})
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        ).status_code == 200
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        ).status_code == 429
        other = {**CHAT, "model": "slow"}
        assert (
            await client.post("/v1/chat/completions", json=other, headers=_auth(key))
        ).status_code == 200


async def test_parallel_slots_are_freed_on_every_path(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        key = await _key(client, limits={"max_parallel": 1})
        slow = {**CHAT, "model": "slow"}
        first, second = await asyncio.gather(
            client.post("/v1/chat/completions", json=slow, headers=_auth(key)),
            client.post("/v1/chat/completions", json=slow, headers=_auth(key)),
        )
        assert sorted([first.status_code, second.status_code]) == [200, 429]
        # An upstream error frees the slot too.
        broken = {**CHAT, "model": "broken"}
        assert (
            await client.post("/v1/chat/completions", json=broken, headers=_auth(key))
        ).status_code == 502
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        ).status_code == 200
        # So does a request whose client gave up.
        with_timeout = httpx.AsyncClient(
            transport=client._transport,
            base_url="http://gw",
            timeout=0.05,
        )
        try:
            await with_timeout.post("/v1/chat/completions", json=slow, headers=_auth(key))
        except httpx.TimeoutException:
            pass
        finally:
            await with_timeout.aclose()
        await asyncio.sleep(0.4)
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        ).status_code == 200


async def test_budget_race_admits_exactly_what_fits(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        one = await client.post("/v1/chat/completions", json=CHAT)
        assert one.status_code == 200
        cost = (await _rows(app))[0].cost_micros  # type: ignore[attr-defined]
        assert cost and cost > 0
        budget_usd = (10 * cost + cost // 2) / 1e6  # room for 10 requests, not 11
        key = await _key(client, budget={"usd": budget_usd, "period": "month"})
        results = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=CHAT, headers=_auth(key)) for _ in range(50))
        )
        codes = [r.status_code for r in results]
        assert codes.count(200) == 10 and codes.count(429) == 40
        refused = next(r for r in results if r.status_code == 429).json()["error"]
        assert refused["code"] == "budget_exceeded"
        rows = [r for r in await _rows(app) if r.key_id == key["id"]]  # type: ignore[attr-defined]
        spent = sum(r.cost_micros or 0 for r in rows)  # type: ignore[attr-defined]
        rt = app.runtime
        assert rt is not None
        [(scope, spec)] = rt.keys.budget_checks()
        assert spent == await rt.budgets.spent(scope, spec) == 10 * cost
        report = (await client.get(f"/api/v1/spend?scope=key:{key['id']}")).json()
        assert report["spent_micros"] == 10 * cost
        assert report["budget_usd"] == budget_usd
        assert report["remaining_usd"] == pytest.approx(budget_usd - 10 * cost / 1e6)


async def test_budgets_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running(settings, CONFIG) as (app, client):
        await client.post("/v1/chat/completions", json=CHAT)
        cost = (await _rows(app))[0].cost_micros  # type: ignore[attr-defined]
        key = await _key(client, budget={"usd": (2 * cost + 1) / 1e6, "period": "day"})
        for _ in range(2):
            assert (
                await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
            ).status_code == 200
    async with running(settings, CONFIG) as (_, client):
        again = await client.post("/v1/chat/completions", json=CHAT, headers=_auth(key))
        assert again.status_code == 429 and again.json()["error"]["code"] == "budget_exceeded"


async def test_documented_key_request_shape(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        org = (await client.post("/api/v1/orgs", json={"name": "o"})).json()
        team_id = org["default_team_id"]
        made = await client.post(
            "/api/v1/keys",
            json={
                "name": "ci",
                "team_id": team_id,
                "limits": {"rpm": 10, "tpm_input": 1000, "tpm_output": 1000, "max_parallel": 2},
                "budget": {"usd": 5.0, "period": "month"},
                "models": ["mock-gpt"],
            },
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["key"].startswith("sk-slc-") and body["team_id"] == team_id
        assert body["limits"] == {
            "rpm": 10,
            "tpm_input": 1000,
            "tpm_output": 1000,
            "max_parallel": 2,
        }
        assert body["budget"] == {"usd": 5.0, "period": "month"}
        auth = {"Authorization": f"Bearer {body['key']}"}
        ok = await client.post("/v1/chat/completions", json=CHAT, headers=auth)
        assert ok.status_code == 200 and ok.headers["x-ratelimit-limit-requests"] == "10"
        assert (
            await client.post("/v1/chat/completions", json={**CHAT, "model": "slow"}, headers=auth)
        ).status_code == 404
        too_big = await client.post(
            "/v1/chat/completions", json={**CHAT, "max_tokens": 5000}, headers=auth
        )
        assert too_big.status_code == 429 and "tpm_output" in too_big.json()["error"]["message"]
