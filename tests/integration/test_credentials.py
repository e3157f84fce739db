"""Provider credentials stored through the admin API: encrypted at rest, masked everywhere,
used for upstream calls."""

from __future__ import annotations

from pathlib import Path

import aiohttp.web

from tests.integration.conftest import make_settings, running

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


async def test_stored_credential_is_sealed_masked_and_used(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    seen: list[str | None] = []

    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(request.headers.get("Authorization"))
        return aiohttp.web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    upstream = aiohttp.web.Application()
    upstream.router.add_post("/v1/chat/completions", handler)
    runner = aiohttp.web.AppRunner(upstream)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    config = f"""
providers:
  up:
    type: openai_compatible
    base_url: "http://127.0.0.1:{unused_tcp_port}/v1"
    api_key: from-config
models:
  - name: echo
    deployments: [{{provider: up, model: m}}]
"""
    secret = "sk-upstream-very-secret-1234"
    settings = make_settings(tmp_path, secret_key="correct horse battery staple")
    try:
        async with running(settings, config) as (app, client):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
            put = await client.put("/api/v1/providers/up/credential", json={"api_key": secret})
            assert put.json()["credential_source"] == "stored"
            assert put.json()["credential"] == "****1234"
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
            listed = await client.get("/api/v1/providers")
            audit = await client.get("/api/v1/audit")
            assert secret not in listed.text and secret not in audit.text
            rt = app.runtime
            assert rt is not None
            [stored] = await rt.storage.credentials.all()
            assert secret.encode() not in stored.sealed
            assert (await client.delete("/api/v1/providers/up/credential")).status_code == 200
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert seen == ["Bearer from-config", f"Bearer {secret}", "Bearer from-config"]
        # Another process with the wrong secret key cannot read it and falls back.
        async with running(settings, config) as (_, client):
            await client.put("/api/v1/providers/up/credential", json={"api_key": secret})
        wrong = make_settings(tmp_path, secret_key="another key")
        async with running(wrong, config) as (_, client):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert seen[-1] == "Bearer from-config"
    finally:
        await runner.cleanup()


async def test_storing_needs_a_secret_key(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (_, client):
        resp = await client.put("/api/v1/providers/mock/credential", json={"api_key": "k"})
        assert resp.status_code == 503 and "SLUICE_SECRET_KEY" in resp.json()["error"]["message"]
