"""Through the gateway, over SQLite and PostgreSQL: a model name longer than a usage row
holds is a 400 naming ``model`` on every dialect, an over-long ``user`` is recorded cut, and
the gateway keeps accounting afterwards. Admins list, replay and delete dead letters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice.app import SluiceApp
from sluice.usage import bounds as b
from sluice.usage.dead_letters import DeadLetter
from sluice.usage.event import UsageEvent
from tests.integration.conftest import make_settings, running

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
LONG = "m" * (b.MODEL_CHARS + 1)

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/chat/completions", CHAT),
    ("/v1/completions", {"prompt": "hi"}),
    ("/v1/embeddings", {"input": "hi"}),
    ("/v1/messages", {**CHAT, "max_tokens": 10}),
    ("/v1/responses", {"input": "hi"}),
]


async def _rows(app: SluiceApp) -> list[UsageEvent]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return await rt.storage.usage.recent(limit=1000)


async def test_a_too_long_model_is_a_400_and_accounting_goes_on(
    tmp_path: Path, database_url: str
) -> None:
    async with running(make_settings(tmp_path, database_url=database_url)) as (app, client):
        for path, body in REQUESTS:
            resp = await client.post(path, json={**body, "model": LONG})
            assert resp.status_code == 400, (path, resp.text)
            assert "model" in resp.text and str(b.MODEL_CHARS) in resp.text
            if path != "/v1/messages":  # Anthropic-shaped errors carry no param
                assert resp.json()["error"]["param"] == "model"
            at_limit = await client.post(path, json={**body, "model": "m" * b.MODEL_CHARS})
            assert at_limit.status_code == 404, at_limit.text  # no such model, not a 400
        user = "u" * (b.END_USER_CHARS + 5000)
        ok = await client.post(
            "/v1/chat/completions", json={**CHAT, "model": "mock-gpt", "user": user}
        )
        assert ok.status_code == 200, ok.text
        rows = await _rows(app)
        assert len(rows) == 2 * len(REQUESTS) + 1
        assert app.runtime is not None and app.runtime.usage.pending == 0
        assert sorted(r.status for r in rows) == [200] + [400] * 5 + [404] * 5
        [good] = [r for r in rows if r.status == 200]
        assert good.end_user == "u" * b.END_USER_CHARS and good.model == "mock-gpt"
        assert all(len(r.error_message or "") <= b.ERROR_MESSAGE_CHARS for r in rows)


async def test_admins_list_replay_and_delete_dead_letters(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (app, client):
        rt = app.runtime
        assert rt is not None
        refused = [
            UsageEvent(f"req_dead{i}", rt.clock.now() + i, "chat", None, "x" * 5000)
            for i in range(3)
        ]
        await rt.storage.dead_letters.add(
            [DeadLetter(e.request_id, e.created_at, 1.0, e, "too long") for e in refused]
        )
        page = await client.get("/api/v1/usage/dead-letters", params={"limit": 2})
        assert page.status_code == 200, page.text
        data = page.json()
        assert data["total"] == 3 and len(data["data"]) == 2
        assert [d["request_id"] for d in data["data"]] == ["req_dead2", "req_dead1"]
        assert data["data"][0]["event"]["model"] == "x" * 5000
        assert data["data"][0]["error"] == "too long"
        rest = await client.get(
            "/api/v1/usage/dead-letters", params={"before_id": data["next_before_id"]}
        )
        assert [d["request_id"] for d in rest.json()["data"]] == ["req_dead0"]
        assert rest.json()["next_before_id"] is None
        first, second, third = (d["id"] for d in [*data["data"], *rest.json()["data"]])

        replayed = await client.post(
            "/api/v1/usage/dead-letters/replay", json={"ids": [first, second, 10**6]}
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {
            "replayed": sorted([first, second]),
            "refused": [],
            "missing": [10**6],
        }
        stored = {r.request_id: r for r in await rt.storage.usage.recent()}
        assert stored["req_dead2"].model == "x" * b.MODEL_CHARS  # cut by the current rules

        assert (await client.delete(f"/api/v1/usage/dead-letters/{third}")).status_code == 204
        gone = await client.delete(f"/api/v1/usage/dead-letters/{third}")
        assert gone.status_code == 404
        assert await rt.storage.dead_letters.count() == 0
        for bad in ({"ids": []}, {"ids": [True]}, {"ids": list(range(1, 502))}, {"id": 1}):
            resp = await client.post("/api/v1/usage/dead-letters/replay", json=bad)
            assert resp.status_code == 400, (bad, resp.text)
        assert (await client.get("/api/v1/usage/dead-letters?limit=0")).status_code == 400
        huge = await client.delete(f"/api/v1/usage/dead-letters/{2**70}")
        assert huge.status_code == 400


async def test_only_admins_see_dead_letters(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (_app, client):
        user = await client.post("/api/v1/users", json={"email": "u@x.io", "name": "U"})
        assert user.status_code < 300, user.text
        key = await client.post("/api/v1/keys", json={"name": "k", "user_id": user.json()["id"]})
        assert key.status_code < 300, key.text
        headers = {"Authorization": f"Bearer {key.json()['key']}"}
        for method, path in [
            ("GET", "/api/v1/usage/dead-letters"),
            ("POST", "/api/v1/usage/dead-letters/replay"),
            ("DELETE", "/api/v1/usage/dead-letters/1"),
        ]:
            kwargs: dict[str, Any] = {"json": {"ids": [1]}} if method == "POST" else {}
            resp = await client.request(method, path, headers=headers, **kwargs)
            assert resp.status_code == 403, (method, path, resp.text)


async def test_a_dead_letter_holding_anything_is_listed(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (app, client):
        rt = app.runtime
        assert rt is not None
        odd = UsageEvent("req_odd", rt.clock.now(), "chat", None, "a\ud800\x00b")
        odd.latency_ms, odd.ttft_ms = float("nan"), float("inf")
        await rt.storage.dead_letters.add([DeadLetter("req_odd", odd.created_at, 1.0, odd, "x")])
        resp = await client.get("/api/v1/usage/dead-letters")
        assert resp.status_code == 200, resp.text
        [letter] = resp.json()["data"]
        assert letter["event"]["latency_ms"] is None and letter["event"]["ttft_ms"] is None
        assert letter["event"]["model"] == "a?\ufffdb"
