"""Providers, models and prices through the admin API on a running gateway (SQLite and
PostgreSQL): created and used at once, read-only file entries, conflicts, audit with
secrets masked, prices from one place, weights changed under load, deletes with requests in
flight, export as YAML."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sluice.app import SluiceApp
from sluice.config.loader import parse_config
from tests.integration.conftest import make_settings, running

Gw = tuple[SluiceApp, httpx.AsyncClient]


def chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


@pytest.fixture
async def gw(tmp_path: Path, database_url: str) -> AsyncIterator[Gw]:
    settings = make_settings(
        tmp_path, database_url=database_url, secret_key="correct horse battery staple"
    )
    async with running(settings) as pair:
        yield pair


async def until(check: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    """Wait (bounded) for ``check`` to hold."""
    for _ in range(int(timeout_s / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


async def _ok(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else {}  # type: ignore[no-any-return]


async def test_provider_and_model_created_through_the_api_serve_at_once(gw: Gw) -> None:
    _, client = gw
    provider = await _ok(
        await client.post(
            "/api/v1/providers",
            json={"name": "mock2", "type": "mock", "timeouts": {"total_s": 30}},
        ),
        201,
    )
    assert provider["source"] == "stored" and provider["spec"]["timeouts"] == {"total_s": 30}
    model = await _ok(
        await client.post(
            "/api/v1/models",
            json={
                "name": "fresh",
                "aliases": ["fresh-alias"],
                "deployments": [{"provider": "mock2", "model": "chat?completion_tokens=3"}],
                "capabilities": ["chat", "tools"],
                "context_window_tokens": 32000,
            },
        ),
        201,
    )
    assert model["source"] == "stored"
    assert model["catalogue"]["capabilities"] == ["chat", "tools"]
    assert model["catalogue"]["context_window"] == 32000
    answer = await client.post("/v1/chat/completions", json=chat("fresh-alias"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-sluice-provider"] == "mock2"
    listed = (await client.get("/v1/models")).json()["data"]
    fresh = next(m for m in listed if m["id"] == "fresh")
    assert fresh["object"] == "model" and fresh["capabilities"] == ["chat", "tools"]
    assert fresh["context_window"] == 32000 and fresh["status"] == "up"
    # the config file's entries are listed, read only
    models = (await client.get("/api/v1/models")).json()["data"]
    assert {m["name"]: m["source"] for m in models}["mock-gpt"] == "config"
    refused = await client.patch("/api/v1/models/mock-gpt", json={"strategy": "priority"})
    assert refused.status_code == 409 and "config file" in refused.json()["error"]["message"]
    refused = await client.delete("/api/v1/providers/mock")
    assert refused.status_code == 409


async def test_names_in_both_sources_and_broken_references_are_refused_whole(gw: Gw) -> None:
    app, client = gw
    same = await client.post(
        "/api/v1/models",
        json={"name": "gpt-demo", "deployments": [{"provider": "mock", "model": "x"}]},
    )
    assert same.status_code == 409, same.text
    assert (
        await client.post("/api/v1/providers", json={"name": "mock", "type": "mock"})
    ).status_code == 409
    await _ok(await client.post("/api/v1/providers", json={"name": "p2", "type": "mock"}), 201)
    await _ok(
        await client.post(
            "/api/v1/models",
            json={"name": "uses-p2", "deployments": [{"provider": "p2", "model": "chat"}]},
        ),
        201,
    )
    busy = await client.delete("/api/v1/providers/p2")
    assert busy.status_code == 409 and "uses-p2" in busy.json()["error"]["message"]
    before = app.runtime.table.names() if app.runtime else []
    bad = await client.patch(
        "/api/v1/models/uses-p2", json={"deployments": [{"provider": "nowhere", "model": "chat"}]}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "deployments[0].provider"
    assert app.runtime is not None and app.runtime.table.names() == before
    assert (await client.post("/v1/chat/completions", json=chat("uses-p2"))).status_code == 200


async def test_changes_are_audited_with_secrets_masked(gw: Gw) -> None:
    _, client = gw
    secret = "sk-live-very-secret-9876"
    made = await _ok(
        await client.post(
            "/api/v1/providers",
            json={
                "name": "compat",
                "type": "openai_compatible",
                "base_url": "http://127.0.0.1:9/v1",
                "api_key": secret,
                "headers": {"X-Team-Token": "hush-hush"},
            },
        ),
        201,
    )
    assert made["credential_source"] == "stored" and secret not in str(made)
    assert "hush-hush" not in str(made)
    await _ok(await client.patch("/api/v1/providers/compat", json={"timeouts": {"connect_s": 2}}))
    await _ok(await client.delete("/api/v1/providers/compat"), 204)
    audit = (await client.get("/api/v1/audit")).json()["data"]
    actions = [e["action"] for e in audit if e["target_type"] == "provider"]
    assert {"provider.create", "provider.update", "provider.delete"} <= set(actions)
    text = str(audit)
    assert secret not in text and "hush-hush" not in text
    update = next(e for e in audit if e["action"] == "provider.update")
    assert update["before"] is not None and update["after"]["timeouts"] == {"connect_s": 2}


async def test_price_override_is_the_price_shown_and_charged(gw: Gw) -> None:
    app, client = gw
    base = (await client.get("/api/v1/models/mock-gpt")).json()
    assert base["catalogue"]["pricing"]["source"] in {"unpriced", "genai-prices", "config"}
    bad = await client.put("/api/v1/models/mock-gpt/price", json={"input_usd_per_mtok": -1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input_usd_per_mtok"
    priced = await _ok(
        await client.put(
            "/api/v1/models/mock-gpt/price",
            json={"input_usd_per_mtok": 1000000, "output_usd_per_mtok": 2000000},
        )
    )
    assert priced["catalogue"]["pricing"] == {
        "input_usd_per_mtok": 1000000.0,
        "output_usd_per_mtok": 2000000.0,
        "source": "override",
    }
    body = chat("mock-gpt") | {"sluice": True}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200
    assert app.runtime is not None
    await app.runtime.usage.flush()
    rows = await app.runtime.storage.usage.recent(limit=1)
    usage = resp.json()["usage"]
    expected = usage["prompt_tokens"] * 1_000_000 + usage["completion_tokens"] * 2_000_000
    assert rows[0].cost_micros == expected
    cleared = await _ok(await client.delete("/api/v1/models/mock-gpt/price"))
    assert cleared["catalogue"]["pricing"]["source"] != "override"


async def test_weights_change_under_load_without_a_failed_request(gw: Gw) -> None:
    _, client = gw
    await _ok(
        await client.post(
            "/api/v1/models",
            json={
                "name": "busy",
                "deployments": [
                    {"provider": "mock", "model": "chat?latency_ms=5", "id": "a"},
                    {"provider": "short", "model": "chat?latency_ms=5", "id": "b", "weight": 0.001},
                ],
            },
        ),
        201,
    )
    statuses: list[int] = []
    served: set[str] = set()
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            resp = await client.post("/v1/chat/completions", json=chat("busy"))
            statuses.append(resp.status_code)
            served.add(resp.headers.get("x-sluice-deployment", ""))

    workers = [asyncio.create_task(load()) for _ in range(8)]
    for weights in ((1, 1), (0.001, 1), (1, 0.001), (0.001, 1)):
        spec = {
            "deployments": [
                {"provider": "mock", "model": "chat?latency_ms=5", "id": "a", "weight": weights[0]},
                {
                    "provider": "short",
                    "model": "chat?latency_ms=5",
                    "id": "b",
                    "weight": weights[1],
                },
            ]
        }
        await _ok(await client.patch("/api/v1/models/busy", json=spec))
        seen = len(statuses)
        await until(lambda seen=seen: len(statuses) >= seen + 20)
    stop.set()
    await asyncio.gather(*workers)
    assert len(statuses) >= 80 and set(statuses) == {200}
    assert served == {"a", "b"}


async def test_delete_with_requests_in_flight_lets_them_finish(gw: Gw) -> None:
    app, client = gw
    await _ok(
        await client.post(
            "/api/v1/models",
            json={
                "name": "going",
                "deployments": [{"provider": "mock", "model": "chat?latency_ms=400"}],
            },
        ),
        201,
    )
    assert app.runtime is not None
    inflight = [
        asyncio.create_task(client.post("/v1/chat/completions", json=chat("going")))
        for _ in range(5)
    ]
    stats = app.runtime.router.stats
    await until(lambda: stats.in_flight("mock/chat?latency_ms=400") >= 5)
    await _ok(await client.delete("/api/v1/models/going"), 204)
    gone = await client.post("/v1/chat/completions", json=chat("going"))
    assert gone.status_code == 404
    answers = await asyncio.gather(*inflight)
    assert [a.status_code for a in answers] == [200] * 5
    await app.runtime.usage.flush()
    rows = await app.runtime.storage.usage.recent(limit=20)
    assert sum(1 for r in rows if r.model == "going") == 6  # 5 served + the 404


async def test_export_writes_the_stored_entries_as_a_config_file(gw: Gw) -> None:
    app, client = gw
    await _ok(await client.post("/api/v1/providers", json={"name": "p3", "type": "mock"}), 201)
    await _ok(
        await client.post(
            "/api/v1/models",
            json={"name": "m3", "deployments": [{"provider": "p3", "model": "chat", "weight": 2}]},
        ),
        201,
    )
    await _ok(await client.put("/api/v1/models/m3/price", json={"input_usd_per_mtok": 1}))
    assert app.control is not None
    text = yaml.safe_dump(app.control.catalog.export())
    exported = parse_config(text, source="exported.yaml")
    assert list(exported.providers) == ["p3"]
    (m3,) = exported.models
    assert m3.deployments[0].weight == 2 and m3.prices is not None
    assert m3.prices.input_usd_per_mtok == 1


async def test_a_stored_name_the_config_file_also_defines_stops_the_start(
    tmp_path: Path,
) -> None:
    from sluice.lifespan import StartError
    from tests.integration.conftest import CONFIG

    settings = make_settings(tmp_path)
    async with running(settings) as (_, client):
        made = await client.post(
            "/api/v1/models",
            json={"name": "later-in-file", "deployments": [{"provider": "mock", "model": "x"}]},
        )
        assert made.status_code == 201, made.text
    grown = CONFIG + "  - {name: later-in-file, deployments: [{provider: mock, model: chat}]}\n"
    with pytest.raises(StartError, match="later-in-file"):
        async with running(settings, grown):
            pass


async def test_concurrent_changes_never_leave_a_broken_table(gw: Gw) -> None:
    app, client = gw
    await _ok(await client.post("/api/v1/providers", json={"name": "p4", "type": "mock"}), 201)
    model = {"name": "on-p4", "deployments": [{"provider": "p4", "model": "chat"}]}
    removed, made = await asyncio.gather(
        client.delete("/api/v1/providers/p4"), client.post("/api/v1/models", json=model)
    )
    assert sorted([removed.status_code, made.status_code]) in ([201, 409], [204, 400])
    assert app.control is not None
    catalog = app.control.catalog
    assert await catalog.follow(force=True, strict=True) is False  # the stored table is whole
    twice = await asyncio.gather(
        *(client.post("/api/v1/models", json=model | {"name": "twin"}) for _ in range(2))
    )
    statuses = sorted(r.status_code for r in twice)
    assert statuses in ([201, 409], [400, 400])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"name": "n", "deployments": [{"provider": "mock", "model": "a\x00b"}]},
            "deployments[0].model",
        ),
        ({"name": "n", "description": "x" * 5000, "deployments": []}, "description"),
        ({"name": "n", "aliases": [f"a{i}" for i in range(600)], "deployments": []}, "aliases"),
    ],
)
async def test_what_a_caller_sends_is_bounded(
    tmp_path: Path, body: dict[str, Any], param: str
) -> None:
    async with running(make_settings(tmp_path)) as (_, client):
        resp = await client.post("/api/v1/models", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["param"] == param
