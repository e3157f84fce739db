"""The response cache in the request path: hits, misses, streams replayed, request
directives, accounting, tenants kept apart (memory and Redis), and Redis going away."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.app import SluiceApp
from sluice.usage.event import UsageEvent
from tests.integration.conftest import make_settings, running
from tests.services import PrivateRedis

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    aliases: [gpt-alias]
    deployments: [{provider: mock, model: chat}]
    prices: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
  - name: cut
    deployments: [{provider: mock, model: "chat?cut=2"}]
  - name: mock-embed
    deployments: [{provider: mock, model: "embed?dim=8"}]
  - name: uncached
    deployments: [{provider: mock, model: chat}]
    cache: {enabled: false}
  - name: tiny
    deployments: [{provider: mock, model: chat}]
    cache: {max_entry_bytes: 200}
cache:
  enabled: true
  max_temperature: 0.5
"""
CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "What is a sluice?"}]}
URL = "/v1/chat/completions"


async def _rows(app: SluiceApp) -> list[UsageEvent]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return sorted(await rt.storage.usage.recent(limit=1000), key=lambda e: e.created_at)


def _data(text: str) -> list[str]:
    return [e[6:] for e in text.split("\n\n") if e.startswith("data: ")]


async def _org_key(client: httpx.AsyncClient, name: str, **body: Any) -> dict[str, str]:
    org = (await client.post("/api/v1/orgs", json={"name": name})).json()
    team = (await client.post(f"/api/v1/orgs/{org['id']}/teams", json={"name": "t"})).json()
    created = await client.post("/api/v1/keys", json={"name": "k", "team_id": team["id"], **body})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


async def test_a_repeated_request_is_a_hit_accounted_as_one(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        first = await client.post(URL, json=CHAT)
        assert first.status_code == 200
        assert first.headers["x-sluice-cache"] == "miss"
        again = await client.post(URL, json={**CHAT, "user": "someone else"})
        assert again.status_code == 200
        assert again.headers["x-sluice-cache"] == "hit"
        assert again.json() == first.json()
        aliased = await client.post(URL, json={**CHAT, "model": "gpt-alias"})
        assert aliased.headers["x-sluice-cache"] == "hit"
        assert aliased.json()["model"] == "gpt-alias"  # named after what was asked
        miss, hit, _ = await _rows(app)
        assert (miss.cache, hit.cache) == ("miss", "hit")
        assert miss.cost_micros and miss.cost_micros > 0 and miss.attempts == 1
        assert hit.status == 200 and hit.cost_micros == 0 and hit.attempts == 0
        assert hit.cost_saved_micros == miss.cost_micros
        assert (hit.prompt_tokens, hit.completion_tokens) == (
            miss.prompt_tokens,
            miss.completion_tokens,
        )
        stats = app.runtime.cache.stats  # type: ignore[union-attr]
        assert (stats.hits, stats.misses, stats.stores) == (2, 1, 1)


async def test_a_stream_is_kept_once_complete_and_replayed_as_a_stream(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        body = {**CHAT, "stream": True}
        first = await client.post(URL, json=body)
        assert first.headers["x-sluice-cache"] == "miss"
        events = _data(first.text)
        assert events[-1] == "[DONE]"
        replayed = await client.post(URL, json=body)
        assert replayed.headers["x-sluice-cache"] == "hit"
        assert replayed.headers["content-type"].startswith("text/event-stream")
        again = _data(replayed.text)
        assert again == events  # no usage chunk asked, none sent
        with_usage = await client.post(
            URL, json={**body, "stream_options": {"include_usage": True}}
        )
        assert with_usage.headers["x-sluice-cache"] == "hit"
        chunks = _data(with_usage.text)
        assert chunks[-1] == "[DONE]"
        usage = orjson.loads(chunks[-2])
        assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
        text = "".join(
            c["delta"].get("content") or "" for e in chunks[:-2] for c in orjson.loads(e)["choices"]
        )
        assert text
        plain = await client.post(URL, json=CHAT)
        assert plain.headers["x-sluice-cache"] == "miss"  # JSON and stream entries differ
        rows = await _rows(app)
        assert [r.cache for r in rows] == ["miss", "hit", "hit", "miss"]
        assert rows[1].streamed and rows[1].ttft_ms is not None


async def test_a_broken_stream_is_never_kept(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        body = {"model": "cut", "stream": True, "messages": CHAT["messages"]}
        for _ in range(2):
            resp = await client.post(URL, json=body)
            assert resp.headers["x-sluice-cache"] == "miss"
            assert _data(resp.text)[-1] != "[DONE]"


async def test_request_directives(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        only = await client.post(URL, json=CHAT, headers={"cache-control": "only-if-cached"})
        assert only.status_code == 504
        assert only.json()["error"]["type"] == "cache_miss"
        kept_not = await client.post(URL, json=CHAT, headers={"cache-control": "no-store"})
        assert kept_not.headers["x-sluice-cache"] == "miss"
        assert (await client.post(URL, json=CHAT)).headers["x-sluice-cache"] == "miss"
        assert (await client.post(URL, json=CHAT)).headers["x-sluice-cache"] == "hit"
        refresh = await client.post(URL, json=CHAT, headers={"cache-control": "no-cache"})
        assert refresh.headers["x-sluice-cache"] == "store"
        found = await client.post(URL, json=CHAT, headers={"cache-control": "only-if-cached"})
        assert found.status_code == 200 and found.headers["x-sluice-cache"] == "hit"
        bad = await client.post(URL, json=CHAT, headers={"x-sluice-cache-ttl": "soon"})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "x-sluice-cache-ttl"
        short = {**CHAT, "messages": [{"role": "user", "content": "short-lived"}]}
        ok = await client.post(URL, json=short, headers={"x-sluice-cache-ttl": "5"})
        assert ok.headers["x-sluice-cache"] == "miss"
        assert (await client.post(URL, json=short)).headers["x-sluice-cache"] == "hit"
        hot = {**CHAT, "temperature": 0.9}
        assert (await client.post(URL, json=hot)).headers["x-sluice-cache"] == "bypass"
        assert (await client.post(URL, json=hot)).headers["x-sluice-cache"] == "bypass"
        off = {**CHAT, "model": "uncached"}
        assert (await client.post(URL, json=off)).headers["x-sluice-cache"] == "bypass"
        assert app.runtime.cache is not None


async def test_completions_embeddings_messages_and_stateless_responses_are_cached(
    tmp_path: Path,
) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        text = {"model": "mock-gpt", "prompt": "A sluice is", "max_tokens": 8}
        first_text = await client.post("/v1/completions", json=text)
        assert first_text.status_code == 200 and first_text.headers["x-sluice-cache"] == "miss"
        again_text = await client.post("/v1/completions", json=text)
        assert again_text.headers["x-sluice-cache"] == "hit"
        assert again_text.json()["choices"] == first_text.json()["choices"]
        embed = {"model": "mock-embed", "input": "a sluice"}
        assert (await client.post("/v1/embeddings", json=embed)).headers["x-sluice-cache"] == "miss"
        assert (await client.post("/v1/embeddings", json=embed)).headers["x-sluice-cache"] == "hit"
        msg = {"model": "mock-gpt", "max_tokens": 20, "messages": CHAT["messages"]}
        first = await client.post("/v1/messages", json=msg)
        assert first.status_code == 200, first.text
        second = await client.post("/v1/messages", json=msg)
        assert second.headers["x-sluice-cache"] == "hit"
        assert second.json() == first.json()
        streamed = {**msg, "stream": True}
        one = await client.post("/v1/messages", json=streamed)
        two = await client.post("/v1/messages", json=streamed)
        assert two.headers["x-sluice-cache"] == "hit" and two.text == one.text
        assert "message_stop" in two.text
        stateless = {"model": "mock-gpt", "input": "What is a sluice?", "store": False}
        assert (await client.post("/v1/responses", json=stateless)).status_code == 200
        hit = await client.post("/v1/responses", json=stateless)
        assert hit.headers["x-sluice-cache"] == "hit"
        stored = {"model": "mock-gpt", "input": "What is a sluice?"}
        assert (await client.post("/v1/responses", json=stored)).headers[
            "x-sluice-cache"
        ] == "bypass"


async def _standing(client: httpx.AsyncClient, key: dict[str, str]) -> dict[str, float]:
    """The key's budget spent and the remaining of its rpm and tpm limits (/v1/usage)."""
    usage = (await client.get("/v1/usage", headers=key)).json()
    limits = {item["name"]: item["remaining"] for item in usage["limits"]}
    tpm = next(v for name, v in limits.items() if name.startswith("tpm"))
    spent = sum(b["spent_usd"] for b in usage["budgets"])
    return {"spent": spent, "tpm": tpm, "rpm": limits["rpm"]}


async def test_a_hit_spends_no_tokens_or_budget_but_counts_a_request(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        key = await _org_key(
            client, "o", limits={"rpm": 3, "tpm_output": 100_000}, budget={"usd": 100}
        )
        assert (await client.post(URL, json=CHAT, headers=key)).headers["x-sluice-cache"] == "miss"
        before = await _standing(client, key)
        assert before["spent"] > 0 and before["tpm"] < 100_000  # the miss spent both
        for _ in range(2):
            resp = await client.post(URL, json=CHAT, headers=key)
            assert resp.headers["x-sluice-cache"] == "hit"
        after = await _standing(client, key)
        assert (after["spent"], after["tpm"]) == (before["spent"], before["tpm"])
        assert after["rpm"] == before["rpm"] - 2  # each hit is still a request
        assert (await client.post(URL, json=CHAT, headers=key)).status_code == 429
        rows = await _rows(app)
        paid = [r for r in rows if r.key_id != "master" and r.cost_micros]
        assert len(paid) == 1  # the miss; the hits cost nothing


ISOLATION = CONFIG.replace(
    "  max_temperature: 0.5\n", "  max_temperature: 0.5\n  backend: BACKEND\n"
)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_two_orgs_never_see_each_others_answers(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    overrides: dict[str, Any] = {}
    if backend == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    async with running(
        make_settings(tmp_path, **overrides), ISOLATION.replace("BACKEND", backend)
    ) as (
        app,
        client,
    ):
        a = await _org_key(client, "a")
        b = await _org_key(client, "b")
        question = {**CHAT, "messages": [{"role": "user", "content": f"isolation {tmp_path}"}]}
        assert (await client.post(URL, json=question, headers=a)).headers[
            "x-sluice-cache"
        ] == "miss"
        assert (await client.post(URL, json=question, headers=b)).headers[
            "x-sluice-cache"
        ] == "miss"
        assert (await client.post(URL, json=question, headers=a)).headers["x-sluice-cache"] == "hit"
        assert (await client.post(URL, json=question, headers=b)).headers["x-sluice-cache"] == "hit"
        stats = app.runtime.cache.stats  # type: ignore[union-attr]
        assert (stats.hits, stats.misses) == (2, 2)


async def test_redis_going_away_makes_the_cache_a_miss_never_an_error(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    settings = make_settings(tmp_path, redis_url=private_redis.url)
    async with running(
        settings, CONFIG.replace("enabled: true", "enabled: true\n  backend: redis")
    ) as (
        app,
        client,
    ):
        assert (await client.post(URL, json=CHAT)).headers["x-sluice-cache"] == "miss"
        assert (await client.post(URL, json=CHAT)).headers["x-sluice-cache"] == "hit"
        private_redis.stop()
        down = await client.post(URL, json=CHAT)
        assert down.status_code == 200
        assert down.headers["x-sluice-cache"] == "miss"
        assert app.runtime.cache.stats.errors >= 1  # type: ignore[union-attr]


async def test_a_corrupted_entry_is_dropped_counted_never_returned(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        first = await client.post(URL, json=CHAT)
        cache = app.runtime.cache  # type: ignore[union-attr]
        assert cache is not None
        entries = cache.store._entries  # type: ignore[attr-defined]
        (key, entry) = next(iter(entries.items()))
        entries[key] = entry._replace(value=entry.value[:-3] + b"xyz")
        again = await client.post(URL, json=CHAT)
        assert again.status_code == 200
        assert again.headers["x-sluice-cache"] == "miss"
        assert cache.stats.corrupt == 1
        fixed = await client.post(URL, json=CHAT)  # the miss's answer replaced it
        assert fixed.headers["x-sluice-cache"] == "hit"
        assert fixed.json()["choices"] == first.json()["choices"]


async def test_a_corrupted_entry_is_removed_even_when_the_miss_is_not_stored(
    tmp_path: Path,
) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        await client.post(URL, json=CHAT)
        cache = app.runtime.cache  # type: ignore[union-attr]
        assert cache is not None
        entries = cache.store._entries  # type: ignore[attr-defined]
        (key, entry) = next(iter(entries.items()))
        entries[key] = entry._replace(value=b"not an entry")
        again = await client.post(URL, json=CHAT, headers={"Cache-Control": "no-store"})
        assert again.status_code == 200 and again.headers["x-sluice-cache"] == "miss"
        assert key not in entries and cache.stats.corrupt == 1
        after = await client.post(URL, json=CHAT)
        assert after.headers["x-sluice-cache"] in ("miss", "store")
        assert cache.stats.corrupt == 1


async def test_cache_metrics_next_to_the_others(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        for _ in range(2):
            await client.post(URL, json=CHAT)
        rt = app.runtime
        assert rt is not None
        await rt.usage.flush()
        rt.observability.metrics.sample()
        text = (await client.get("/metrics")).text
        assert 'sluice_cache_requests_total{model="mock-gpt",result="hit"} 1.0' in text
        assert 'sluice_cache_requests_total{model="mock-gpt",result="miss"} 1.0' in text
        saved = [line for line in text.splitlines() if line.startswith("sluice_cache_saved_usd")]
        assert saved and float(saved[0].rsplit(" ", 1)[1]) > 0
        held = [line for line in text.splitlines() if line.startswith("sluice_cache_bytes ")]
        assert held and float(held[0].rsplit(" ", 1)[1]) > 0
        assert "sluice_cache_evictions_total 0.0" in text


async def test_an_answer_over_the_entry_cap_is_not_stored(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        big = {**CHAT, "model": "tiny"}
        for _ in range(2):
            assert (await client.post(URL, json=big)).headers["x-sluice-cache"] == "miss"
        streamed = {**big, "stream": True}
        for _ in range(2):
            assert (await client.post(URL, json=streamed)).headers["x-sluice-cache"] == "miss"
        stats = app.runtime.cache.stats  # type: ignore[union-attr]
        assert (stats.stores, stats.oversized) == (0, 4)
