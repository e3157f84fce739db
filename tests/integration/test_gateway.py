"""The whole app in process (ASGI), over the mock provider and a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from sluice.app import SluiceApp
from tests.integration.conftest import make_settings, running

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "Hello there"}]}


async def _rows(app: SluiceApp) -> list[dict[str, object]]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return [
        vars(e) if hasattr(e, "__dict__") else {f: getattr(e, f) for f in e.__slots__}
        for e in await rt.storage.usage.recent(limit=1000)
    ]


def _events(text: str) -> list[bytes]:
    return [line[6:].encode() for line in text.split("\n\n") if line.startswith("data: ")]


async def test_chat_answers_with_usage_and_headers(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    resp = await client.post(
        "/v1/chat/completions", json={**CHAT, "user": "alice", "max_tokens": 5}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    assert resp.headers["x-sluice-provider"] == "mock"
    rid = resp.headers["x-request-id"]
    [row] = await _rows(app)
    assert row["request_id"] == rid
    assert (row["status"], row["model"], row["deployment"], row["end_user"]) == (
        200,
        "mock-gpt",
        "mock/chat",
        "alice",
    )
    assert (row["completion_tokens"], row["tokens_estimated"], row["streamed"]) == (5, False, False)
    assert row["key_id"] == "master"


async def test_routes_answer_without_the_v1_prefix(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gateway
    assert (await client.post("/chat/completions", json=CHAT)).status_code == 200
    assert (
        await client.post("/completions", json={"model": "mock-gpt", "prompt": "x"})
    ).status_code == 200
    assert (
        await client.post("/embeddings", json={"model": "mock-embed", "input": "x"})
    ).status_code == 200
    assert (await client.get("/models")).status_code == 200
    assert (await client.get("/models/gpt-demo")).json()["id"] == "gpt-demo"


async def test_stream_hides_the_usage_chunk_unless_asked(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    events = _events(resp.text)
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == b"[DONE]"
    assert all(b'"usage"' not in e for e in events)
    asked = await client.post(
        "/v1/chat/completions",
        json={**CHAT, "stream": True, "stream_options": {"include_usage": True}},
    )
    usage_events = [orjson.loads(e) for e in _events(asked.text)[:-1] if b'"usage"' in e]
    assert len(usage_events) == 1 and usage_events[0]["usage"]["completion_tokens"] == 64
    rows = await _rows(app)
    assert {(r["streamed"], r["completion_tokens"], r["tokens_estimated"]) for r in rows} == {
        (True, 64, False)
    }
    assert all(r["ttft_ms"] is not None for r in rows)


async def test_stream_without_upstream_usage_is_counted_and_marked_estimated(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    resp = await client.post(
        "/v1/chat/completions",
        json={
            "model": "no-usage",
            "stream": True,
            "messages": CHAT["messages"],
            "stream_options": {"include_usage": True},
        },
    )
    events = _events(resp.text)
    synthesized = orjson.loads(events[-2])
    assert synthesized["usage"]["completion_tokens"] > 0
    [row] = await _rows(app)
    assert row["tokens_estimated"] is True
    assert row["completion_tokens"] == synthesized["usage"]["completion_tokens"]


async def test_errors_are_openai_shaped_and_each_is_one_usage_row(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    cases = [
        (client.post("/v1/chat/completions", content=b"{oops"), 400, None),
        (client.post("/v1/chat/completions", json={"model": "mock-gpt"}), 400, "messages"),
        (client.post("/v1/chat/completions", json={**CHAT, "model": "nope"}), 404, "model"),
        (client.post("/v1/chat/completions", json={**CHAT, "model": "broken"}), 502, None),
        (client.post("/v1/chat/completions", json={**CHAT, "model": "slow"}), 504, None),
    ]
    for request, status, param in cases:
        resp = await request
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["param"] == param
        assert "Traceback" not in resp.text
    broken = await client.post("/v1/chat/completions", json={**CHAT, "model": "broken"})
    assert broken.headers["retry-after"] == "2"
    rows = await _rows(app)
    assert sorted(r["status"] for r in rows) == [400, 400, 404, 502, 502, 504]
    assert {r["error_kind"] for r in rows} == {
        "caller_bad_request",
        "caller_not_found",
        "provider_unavailable",
        "provider_timeout",
    }


async def test_unauthenticated_requests_get_401_and_no_row(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": ""}):
        resp = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert resp.status_code == 401
        assert resp.json()["error"]["type"] == "authentication_error"
    ok = await client.post(
        "/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": "", "x-api-key": "test-master-key"},
    )
    assert ok.status_code == 200
    assert len(await _rows(app)) == 1


async def test_mid_stream_failure_ends_with_an_error_event_not_done(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gateway
    resp = await client.post("/v1/chat/completions", json={**CHAT, "model": "cut", "stream": True})
    assert resp.status_code == 200
    events = _events(resp.text)
    assert b"[DONE]" not in events
    last = orjson.loads(events[-1])
    assert last["error"]["code"] == "provider_stream_interrupted"
    [row] = await _rows(app)
    assert row["error_kind"] == "provider_stream_interrupted"
    assert row["streamed"] is True and row["completion_tokens"] > 0


async def test_body_limit_is_413(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, max_body_bytes=1000)) as (app, client):
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 2000}]}
        resp = await client.post("/v1/chat/completions", json=big)
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "caller_payload_too_large"
        assert [r["status"] for r in await _rows(app)] == [413]


async def test_models_list_and_method_and_path_errors(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gateway
    ids = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert ids[:3] == ["mock-gpt", "gpt-demo", "mock-embed"]
    assert (await client.get("/v1/models/nope")).status_code == 404
    assert (await client.get("/v1/chat/completions")).status_code == 405
    assert (await client.post("/v1/nothing")).json()["error"]["code"] == "caller_not_found"


async def test_key_allow_list_hides_other_models(
    gateway: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gateway
    created = (
        await client.post("/api/v1/keys", json={"name": "narrow", "models": ["mock-gpt"]})
    ).json()
    auth = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=auth)).status_code == 200
    alias = await client.post(
        "/v1/chat/completions", json={**CHAT, "model": "gpt-demo"}, headers=auth
    )
    assert alias.status_code == 200
    other = await client.post(
        "/v1/embeddings", json={"model": "mock-embed", "input": "x"}, headers=auth
    )
    assert other.status_code == 404
    listed = [m["id"] for m in (await client.get("/v1/models", headers=auth)).json()["data"]]
    assert listed == ["mock-gpt", "gpt-demo"]


async def test_admin_key_routes(gateway: tuple[SluiceApp, httpx.AsyncClient]) -> None:
    _, client = gateway
    created = await client.post("/api/v1/keys", json={"name": "ci"})
    assert created.status_code == 201
    body = created.json()
    key, key_id = body["key"], body["id"]
    assert key.startswith("sk-slc-") and body["preview"].endswith(key[-4:])
    listed = (await client.get("/api/v1/keys")).json()["data"]
    assert [k["id"] for k in listed] == [key_id]
    assert "key" not in listed[0]
    user = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/keys", headers=user)).status_code == 403
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=user)).status_code == 200
    assert (await client.delete(f"/api/v1/keys/{key_id}")).json()["revoked_at"] is not None
    denied = await client.post("/v1/chat/completions", json=CHAT, headers=user)
    assert denied.status_code == 401 and "revoked" in denied.json()["error"]["message"]
    bad = await client.post("/api/v1/keys", json={"name": ""})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"
    extra = await client.post("/api/v1/keys", json={"name": "x", "role": "admin"})
    assert extra.status_code == 400 and extra.json()["error"]["param"] == "role"
    assert (await client.delete("/api/v1/keys/key_nope")).status_code == 404
    assert (await client.get("/api/openapi.json")).status_code == 200


async def test_health(gateway: tuple[SluiceApp, httpx.AsyncClient]) -> None:
    _, client = gateway
    assert (await client.get("/health/live", headers={})).json() == {"status": "ok"}
    ready = await client.get("/health/ready", headers={})
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "ok"}
