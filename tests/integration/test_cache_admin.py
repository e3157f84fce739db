"""The response cache's control: invalidation and warm-up through the admin API (and the CLI
that calls it), cache analytics, and the semantic mode over an in-tree index."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from sluice.cli import app as cli
from tests.fakes.semantic import FakeSemanticIndex, embed_words
from tests.integration.conftest import make_settings, running

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    deployments: [{provider: mock, model: chat}]
    prices: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
  - name: other
    deployments: [{provider: mock, model: chat}]
  - name: mock-embed
    deployments: [{provider: mock, model: "embed?dim=8"}]
cache:
  enabled: true
  embedding_model: mock-embed
  threshold: 0.8
"""
SEMANTIC = CONFIG.replace("  threshold: 0.8\n", "  threshold: 0.8\n  mode: semantic\n")
URL = "/v1/chat/completions"


def _chat(text: str, model: str = "mock-gpt") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def _org_key(client: httpx.AsyncClient, name: str) -> tuple[dict[str, str], str]:
    org = (await client.post("/api/v1/orgs", json={"name": name})).json()
    team = (await client.post(f"/api/v1/orgs/{org['id']}/teams", json={"name": "t"})).json()
    created = (await client.post("/api/v1/keys", json={"name": "k", "team_id": team["id"]})).json()
    return {"Authorization": f"Bearer {created['key']}"}, org["id"]


async def _status(client: httpx.AsyncClient, body: dict[str, Any], key: dict[str, str]) -> str:
    resp = await client.post(URL, json=body, headers=key)
    assert resp.status_code == 200, resp.text
    return resp.headers["x-sluice-cache"]


async def test_warm_then_clear_by_model_org_age_and_all(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        a, org_a = await _org_key(client, "a")
        b, _ = await _org_key(client, "b")
        warmed = await client.post(
            "/api/v1/cache/warm",
            json={
                "entries": [
                    {
                        "model": "mock-gpt",
                        "scope": f"org:{org_a}",
                        "prompt": "What is a sluice?",
                        "answer": "A gate that controls water.",
                    }
                ]
            },
        )
        assert warmed.status_code == 200, warmed.text
        assert warmed.json() == {"stored": 1, "semantic": 0}
        hit = await client.post(URL, json=_chat("What is a sluice?"), headers=a)
        assert hit.headers["x-sluice-cache"] == "hit"
        assert hit.json()["choices"][0]["message"]["content"] == "A gate that controls water."
        assert await _status(client, _chat("What is a sluice?"), b) == "miss"

        assert await _status(client, _chat("q", "other"), a) == "miss"
        cleared = await client.post("/api/v1/cache/clear", json={"model": "other"})
        assert cleared.json() == {"exact": 1, "semantic": 0}
        assert await _status(client, _chat("q", "other"), a) == "miss"

        dropped = await client.post("/api/v1/cache/clear", json={"org_id": org_a})
        assert dropped.json()["exact"] == 2  # the warmed answer and "q" on other
        assert await _status(client, _chat("What is a sluice?"), a) == "miss"
        assert await _status(client, _chat("What is a sluice?"), b) == "hit"

        young = await client.post("/api/v1/cache/clear", json={"older_than_s": 3600})
        assert young.json()["exact"] == 0
        assert (await client.post("/api/v1/cache/clear", json={})).status_code == 400
        everything = await client.post("/api/v1/cache/clear", json={"all": True})
        assert everything.json()["exact"] == 2
        status = (await client.get("/api/v1/cache")).json()
        assert status["enabled"] and status["backend"] == "MemoryAnswers"
        assert status["bytes"] == 0 and status["hits"] == 2

        bad = await client.post(
            "/api/v1/cache/warm",
            json={"entries": [{"model": "nope", "scope": "org:x", "prompt": "p", "answer": "a"}]},
        )
        assert bad.status_code == 400 and "entries[0].model" in bad.json()["error"]["message"]
        assert app.runtime is not None


async def test_only_admins_manage_the_cache(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (_, client):
        key, _ = await _org_key(client, "a")
        assert (await client.get("/api/v1/cache", headers=key)).status_code == 403
        clear = await client.post("/api/v1/cache/clear", json={"all": True}, headers=key)
        assert clear.status_code == 403


async def test_cache_analytics_per_model_and_team(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG) as (app, client):
        key, _ = await _org_key(client, "a")
        for _ in range(3):
            await _status(client, _chat("analytics"), key)
        assert app.runtime is not None
        await app.runtime.usage.flush()
        rows = (await client.get("/api/v1/analytics/cache")).json()["data"]
        (row,) = [r for r in rows if r["model"] == "mock-gpt"]
        assert (row["requests"], row["hits"], row["misses"]) == (3, 2, 1)
        assert row["hit_rate"] == pytest.approx(2 / 3, abs=1e-3)
        assert row["saved_usd"] > 0 and row["team_id"]


async def test_semantic_mode_answers_a_paraphrase_within_the_tenant(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), SEMANTIC) as (app, client):
        cache = app.runtime.cache  # type: ignore[union-attr]
        assert cache is not None
        index = FakeSemanticIndex()
        cache.semantic, cache.embed_for = index, embed_words  # as the composition root does
        a, org_a = await _org_key(client, "a")
        b, _ = await _org_key(client, "b")
        asked = "how does a sluice gate control the water level"
        first = await client.post(URL, json=_chat(asked), headers=a)
        assert first.headers["x-sluice-cache"] == "miss"
        assert len(index.entries) == 1 and index.entries[0].probe.scope == f"org:{org_a}"
        paraphrase = "How does a sluice gate control the level of water?"
        hit = await client.post(URL, json=_chat(paraphrase), headers=a)
        assert hit.headers["x-sluice-cache"] == "hit"
        assert float(hit.headers["x-sluice-cache-similarity"]) >= 0.8
        assert hit.json()["choices"] == first.json()["choices"]
        assert await _status(client, _chat(paraphrase), b) == "miss"
        unrelated = await client.post(URL, json=_chat("list three prime numbers"), headers=a)
        assert unrelated.headers["x-sluice-cache"] == "miss"
        hot = {**_chat(paraphrase), "temperature": 0.3}  # other parameters: no match
        assert await _status(client, hot, a) == "miss"
        cleared = await client.post("/api/v1/cache/clear", json={"org_id": org_a})
        assert cleared.json()["semantic"] == 3
        assert cache.stats.semantic_hits == 1

        admin = app.control.response_cache  # type: ignore[union-attr]
        admin.embed = lambda _principal, text: embed_words(None, None, "mock-embed", text)
        warmed = await client.post(
            "/api/v1/cache/warm",
            json={
                "entries": [
                    {
                        "model": "mock-gpt",
                        "scope": f"org:{org_a}",
                        "prompt": "what is the capital of france",
                        "answer": "Paris.",
                    }
                ]
            },
        )
        assert warmed.json() == {"stored": 1, "semantic": 1}
        near = await client.post(URL, json=_chat("What is the capital of France?"), headers=a)
        assert near.headers["x-sluice-cache"] == "hit"
        assert near.json()["choices"][0]["message"]["content"] == "Paris."


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers["Authorization"], body))
        answer = (
            {"stored": len(body["entries"])}
            if self.path.endswith("/warm")
            else {"exact": 4, "semantic": 1}
        )
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def admin_api() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_cli_calls_the_admin_api(admin_api: str, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(
        cli, ["cache", "clear", "--url", admin_api, "--key", "k1", "--model", "m", "--all"]
    )
    assert done.exit_code == 0, done.output
    assert "dropped 4 exact and 1 semantic" in done.output
    lines = tmp_path / "warm.jsonl"
    pairs = [{"model": "m", "scope": "org:o", "prompt": f"p{i}", "answer": "a"} for i in range(3)]
    lines.write_text("\n".join(json.dumps(p) for p in pairs) + "\n\n")
    warmed = runner.invoke(cli, ["cache", "warm", str(lines), "--url", admin_api, "--key", "k1"])
    assert warmed.exit_code == 0, warmed.output
    assert "stored 3 entries (0 in the semantic index)" in warmed.output
    assert _Recorder.seen == [
        ("/api/v1/cache/clear", "Bearer k1", {"all": True, "model": "m"}),
        ("/api/v1/cache/warm", "Bearer k1", {"entries": pairs}),
    ]
    nothing = runner.invoke(cli, ["cache", "clear", "--url", admin_api, "--key", "k1"])
    assert nothing.exit_code == 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    refused = runner.invoke(cli, ["cache", "warm", str(broken), "--url", admin_api, "--key", "k"])
    assert refused.exit_code == 2 and "broken.jsonl:1" in refused.output
