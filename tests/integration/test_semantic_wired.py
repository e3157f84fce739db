"""The semantic cache as ``sluice`` wires it: the index in the database, prompts embedded by
the configured model through the pipeline (each embedding a usage row of the caller, or of
the admin warming up), hits within the tenant only, and a restart that finds the entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import make_settings, running

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    deployments: [{provider: mock, model: chat}]
    prices: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
  - name: words
    deployments: [{provider: mock, model: "embed?dim=64&bow=1"}]
cache:
  enabled: true
  mode: semantic
  embedding_model: words
  threshold: 0.8
"""
URL = "/v1/chat/completions"
ASKED = "how does a sluice gate control the water level"
PARAPHRASE = "how does a sluice gate control the water level ?"


def _chat(text: str) -> dict[str, Any]:
    return {"model": "mock-gpt", "messages": [{"role": "user", "content": text}]}


async def _org_key(client: httpx.AsyncClient, name: str) -> tuple[dict[str, str], str]:
    org = (await client.post("/api/v1/orgs", json={"name": name})).json()
    team = (await client.post(f"/api/v1/orgs/{org['id']}/teams", json={"name": "t"})).json()
    made = (await client.post("/api/v1/keys", json={"name": "k", "team_id": team["id"]})).json()
    return {"Authorization": f"Bearer {made['key']}"}, made["id"]


async def _rows(app: Any, key_id: str) -> list[Any]:
    await app.runtime.usage.flush()
    return [e for e in await app.runtime.storage.usage.recent(limit=1000) if e.key_id == key_id]


async def test_a_paraphrase_hits_through_the_real_index_and_embeddings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running(settings, CONFIG) as (app, client):
        assert app.runtime.cache.semantic is not None  # type: ignore[union-attr]
        a, key_a = await _org_key(client, "a")
        b, _ = await _org_key(client, "b")
        first = await client.post(URL, json=_chat(ASKED), headers=a)
        assert first.status_code == 200 and first.headers["x-sluice-cache"] == "miss"
        hit = await client.post(URL, json=_chat(PARAPHRASE), headers=a)
        assert hit.headers["x-sluice-cache"] == "hit", hit.headers
        assert float(hit.headers["x-sluice-cache-similarity"]) >= 0.8
        assert hit.json()["choices"] == first.json()["choices"]
        other_org = await client.post(URL, json=_chat(PARAPHRASE), headers=b)
        assert other_org.headers["x-sluice-cache"] == "miss"
        unrelated = await client.post(URL, json=_chat("name three prime numbers"), headers=a)
        assert unrelated.headers["x-sluice-cache"] == "miss"
        rows = await _rows(app, key_a)
        embeds = [r for r in rows if r.endpoint == "embeddings"]
        chats = [r for r in rows if r.endpoint == "chat"]
        # one embedding per lookup, each the caller's own row next to its request's
        assert len(chats) == 3 and len(embeds) == 3
        assert {r.request_id.removesuffix(".embed") for r in embeds} == {
            r.request_id for r in chats
        }

    async with running(settings, CONFIG) as (app, client):  # a restart finds the entries
        key = {"Authorization": a["Authorization"]}
        again = await client.post(URL, json=_chat(PARAPHRASE), headers=key)
        assert again.headers["x-sluice-cache"] == "hit"


async def test_warm_up_fills_the_index_with_the_admins_embeddings(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        a, key_a = await _org_key(client, "a")
        org = (await client.get("/api/v1/orgs")).json()["data"][0]["id"]
        warmed = await client.post(
            "/api/v1/cache/warm",
            json={
                "entries": [
                    {
                        "model": "mock-gpt",
                        "scope": f"org:{org}",
                        "prompt": "what is the capital of france",
                        "answer": "Paris.",
                    }
                ]
            },
        )
        assert warmed.status_code == 200, warmed.text
        assert warmed.json() == {"stored": 1, "semantic": 1}
        near = await client.post(URL, json=_chat("what is the capital of france ?"), headers=a)
        assert near.headers["x-sluice-cache"] == "hit"
        assert near.json()["choices"][0]["message"]["content"] == "Paris."
        await app.runtime.usage.flush()  # type: ignore[union-attr]
        embeds = [
            r
            for r in await app.runtime.storage.usage.recent(limit=100)  # type: ignore[union-attr]
            if r.endpoint == "embeddings"
        ]
        # the warm-up's embedding is the admin's request, the lookup's the caller's
        assert sorted(r.key_id == key_a for r in embeds) == [False, True]
