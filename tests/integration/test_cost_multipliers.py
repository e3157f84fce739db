"""Every choice a request asks for is reserved, and the fields that multiply cost are bounded
per model (issue #12, point 4). Memory and Redis backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import make_settings, running

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: priced
    deployments: [{provider: mock, model: "chat"}]
    prices: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
  - name: small
    max_output_tokens: 500
    max_n: 3
    deployments: [{provider: mock, model: "chat"}]
"""
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["memory", "redis"])
async def gateway(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    extra = {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    async with running(make_settings(tmp_path, **extra), CONFIG) as pair:
        yield pair


async def _key(client: httpx.AsyncClient, **body: object) -> tuple[str, dict[str, str]]:
    created = await client.post("/api/v1/keys", json={"name": "k", **body})
    assert created.status_code == 201, created.text
    data = created.json()
    return data["id"], {"Authorization": f"Bearer {data['key']}"}


async def _rows(app: SluiceApp, key_id: str) -> list[object]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return [r for r in await rt.storage.usage.recent(limit=1000) if r.key_id == key_id]


async def test_budget_reserves_every_choice(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    # 1000 output tokens cost 600 micro-dollars: the budget holds one such answer, not four.
    key_id, auth = await _key(client, budget={"usd": 0.0012, "period": "month"})
    body = {"model": "priced", "messages": HI, "max_tokens": 1000}
    refused = await client.post("/v1/chat/completions", json={**body, "n": 4}, headers=auth)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"
    [row] = await _rows(app, key_id)
    assert row.attempts == 0 and row.provider is None  # type: ignore[attr-defined]
    ok = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert ok.status_code == 200, ok.text


async def test_token_limits_reserve_every_choice(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    key_id, auth = await _key(client, limits={"tpm_output": 1000})
    body = {"model": "priced", "prompt": "hi", "max_tokens": 400}
    for multiplied in ({"n": 3}, {"best_of": 3}, {"prompt": ["a", "b", "c"]}):
        refused = await client.post("/v1/completions", json={**body, **multiplied}, headers=auth)
        assert refused.status_code == 429, (multiplied, refused.text)
        assert "tpm_output" in refused.json()["error"]["message"]
    ok = await client.post("/v1/completions", json={**body, "n": 2}, headers=auth)
    assert ok.status_code == 200, ok.text
    rows = await _rows(app, key_id)
    assert sorted(r.attempts for r in rows) == [0, 0, 0, 1]  # type: ignore[attr-defined]


async def test_a_provider_billing_n_answers_is_settled_n_fold(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    key_id, auth = await _key(client)
    body = {"model": "priced", "messages": HI, "max_tokens": 10}
    one = await client.post("/v1/chat/completions", json=body, headers=auth)
    three = await client.post("/v1/chat/completions", json={**body, "n": 3}, headers=auth)
    assert len(three.json()["choices"]) == 3
    assert (
        three.json()["usage"]["completion_tokens"] == 3 * one.json()["usage"]["completion_tokens"]
    )
    rows = sorted(await _rows(app, key_id), key=lambda r: r.completion_tokens)  # type: ignore[attr-defined]
    assert [r.completion_tokens for r in rows] == [10, 30]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"messages": HI, "n": 4}, "n"),
        ("/v1/chat/completions", {"messages": HI, "max_tokens": 501}, "max_tokens"),
        (
            "/v1/chat/completions",
            {"messages": HI, "max_completion_tokens": 501},
            "max_completion_tokens",
        ),
        ("/v1/chat/completions", {"messages": HI, "n": 10**18}, "n"),
        ("/v1/completions", {"prompt": "x", "best_of": 4}, "best_of"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 10**18}, "max_tokens"),
        ("/v1/responses", {"input": "x", "max_output_tokens": 501}, "max_output_tokens"),
    ],
)
async def test_bounds_answer_400_naming_the_field(
    gateway: tuple[SluiceApp, httpx.AsyncClient], path: str, body: dict[str, object], param: str
) -> None:
    app, client = gateway
    key_id, auth = await _key(client)
    answer = await client.post(path, json={"model": "small", **body}, headers=auth)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error.get("param", param) == param and param in error["message"]
    [row] = await _rows(app, key_id)
    assert row.status == 400 and row.attempts == 0  # type: ignore[attr-defined]


async def test_messages_max_tokens_is_bounded(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gateway
    _, auth = await _key(client)
    body = {"model": "small", "messages": HI}
    ok = await client.post("/v1/messages", json={**body, "max_tokens": 500}, headers=auth)
    assert ok.status_code == 200, ok.text
    refused = await client.post("/v1/messages", json={**body, "max_tokens": 501}, headers=auth)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in refused.json()["error"]["message"]
