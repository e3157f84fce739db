"""A real ``sluice serve``: metrics add up across two workers, and no secret the run
created appears in any output (logs, /metrics, usage rows, answers)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp.web
import httpx

from tests.e2e.support import Gateway, Proc, base_env, create_key_cli, free_port, query, spawn

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
_SAMPLE = re.compile(r"^sluice_requests_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def _start(workdir: Path, env: dict[str, str], config: str, *args: str) -> tuple[Proc, int]:
    path = workdir / "sluice.yaml"
    path.write_text(config)
    port = free_port()
    proc = spawn(
        "gateway",
        ["serve", "--port", str(port), "--config", str(path), *args],
        env,
        workdir / "gateway.log",
    )
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/health/ready")
    except BaseException:
        proc.kill()
        raise
    return proc, port


def _requests_total(text: str) -> float:
    return sum(float(v) for v in _SAMPLE.findall(text))


async def test_metrics_add_up_across_two_workers(
    tmp_path: Path, mock_port: int, postgres_url: str
) -> None:
    master = "sk-master-" + secrets.token_hex(16)
    env = base_env(tmp_path / "data", master, SLUICE_DATABASE_URL=postgres_url)
    config = f"""
providers:
  up: {{type: openai_compatible, base_url: "http://127.0.0.1:{mock_port}/v1", api_key: sk-up}}
models:
  - name: m-chat
    deployments: [{{provider: up, model: chat}}]
"""
    proc, port = _start(tmp_path, env, config, "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {master}"}
    sent = 0
    try:
        # No keep-alive: every request is a new connection, spread over the workers.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, headers=auth, limits=limits, timeout=20) as c:
            for i in range(30):
                body = {**CHAT, "model": "m-chat", "stream": i % 3 == 0}
                assert (await c.post("/v1/chat/completions", json=body)).status_code == 200
                sent += 1
            for _ in range(4):
                resp = await c.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
                assert resp.status_code == 404
                sent += 1
            deadline = time.monotonic() + 15
            total = 0.0
            while time.monotonic() < deadline:
                total = _requests_total((await c.get("/metrics")).text)
                if total == sent:
                    break
                await asyncio.sleep(0.1)
            assert total == sent
            # Whichever worker answers the scrape, it reports every worker's counts.
            for _ in range(8):
                text = (await c.get("/metrics")).text
                assert _requests_total(text) == sent
            assert 'error_kind="caller_not_found",model="other"' in text
            assert "sluice_time_to_first_token_seconds_count" in text
    finally:
        code = proc.terminate()
        assert code in (0, -15), proc.log()


class Leaky:
    """An upstream whose error messages quote the credential it received and a signed
    URL, as careless real providers do."""

    def __init__(self, url_secret: str) -> None:
        self.url_secret = url_secret
        self.headers: list[dict[str, str]] = []

    async def chat(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        self.headers.append(dict(request.headers))
        body = await request.json()
        credential = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if body["model"] == "leak401":
            message = f"invalid credential {credential} (header {request.headers['Authorization']})"
            return aiohttp.web.json_response({"error": {"message": message}}, status=401)
        if body["model"] == "leak500":
            message = f"failed calling https://files.example/v1/x?alt=sse&key={self.url_secret}"
            return aiohttp.web.json_response({"error": {"message": message}}, status=500)
        return aiohttp.web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "ok",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "fine"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )


@asynccontextmanager
async def leaky_upstream(url_secret: str) -> AsyncIterator[tuple[Leaky, int]]:
    leaky = Leaky(url_secret)
    app = aiohttp.web.Application()
    app.router.add_post("/v1/chat/completions", leaky.chat)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield leaky, port
    finally:
        await runner.cleanup()


async def test_no_secret_appears_in_any_output(tmp_path: Path) -> None:
    hexes = {name: secrets.token_hex(12) for name in ("master", "up", "plain", "stored", "url")}
    master = f"sk-master-{hexes['master']}"
    upstream_key = f"sk-upstream-{hexes['up']}"
    plain_key = f"plainvalue{hexes['plain']}"  # matches no pattern: masked by value
    stored_key = f"storedcred{hexes['stored']}"
    url_secret = f"urlsecret{hexes['url']}"
    secret_key = secrets.token_hex(16)
    fake_key = "sk-slc-abcdefgh-" + secrets.token_hex(16)
    async with leaky_upstream(url_secret) as (leaky, up_port):
        env = base_env(
            tmp_path / "data",
            master,
            SLUICE_LOG_FORMAT="json",
            SLUICE_LOG_LEVEL="debug",
            SLUICE_SECRET_KEY=secret_key,
            PLAIN_UPSTREAM_KEY=plain_key,
        )
        url = f"http://127.0.0.1:{up_port}/v1"
        config = f"""
providers:
  leaky: {{type: openai_compatible, base_url: "{url}", api_key: {upstream_key}}}
  plain: {{type: openai_compatible, base_url: "{url}", api_key: "env:PLAIN_UPSTREAM_KEY"}}
  stored: {{type: openai_compatible, base_url: "{url}", api_key: placeholder-config-key}}
models:
""" + "".join(
            f"  - name: {p}-{m}\n    deployments: [{{provider: {p}, model: {m}, retries: 0}}]\n"
            for p in ("leaky", "plain", "stored")
            for m in ("ok", "leak401", "leak500")
        )
        cli_key = create_key_cli(env, "cli")["key"]
        proc, port = _start(tmp_path, env, config)
        gw = Gateway(proc, port, env, tmp_path / "data", master, cli_key, "")
        answers: list[str] = []
        admin = {"Authorization": f"Bearer {master}"}
        try:
            async with httpx.AsyncClient(base_url=gw.base_url, timeout=20) as c:
                user = await c.post(
                    "/api/v1/users", json={"email": "a@b.c", "name": "A"}, headers=admin
                )
                assert user.status_code == 201, user.text
                made = await c.post(
                    "/api/v1/keys",
                    json={"name": "api", "user_id": user.json()["id"]},
                    headers=admin,
                )
                assert made.status_code == 201, made.text
                api_key = made.json()["key"]
                put = await c.put(
                    "/api/v1/providers/stored/credential",
                    json={"api_key": stored_key},
                    headers=admin,
                )
                assert put.status_code == 200, put.text
                answers += [user.text, made.text.replace(api_key, ""), put.text]
                # Wait until the stored credential is in use.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    await c.post(
                        "/v1/chat/completions",
                        json={**CHAT, "model": "stored-ok"},
                        headers={"Authorization": f"Bearer {cli_key}"},
                    )
                    if leaky.headers[-1].get("Authorization") == f"Bearer {stored_key}":
                        break
                    await asyncio.sleep(0.1)
                assert leaky.headers[-1]["Authorization"] == f"Bearer {stored_key}"
                for key in (api_key, cli_key):
                    for provider in ("leaky", "plain", "stored"):
                        for model in ("ok", "leak401", "leak500"):
                            for stream in (False, True):
                                resp = await c.post(
                                    "/v1/chat/completions",
                                    json={**CHAT, "model": f"{provider}-{model}", "stream": stream},
                                    headers={"Authorization": f"Bearer {key}"},
                                )
                                answers.append(resp.text + json.dumps(dict(resp.headers)))
                                assert resp.status_code in (200, 502), resp.text
                bad = await c.post(
                    "/v1/chat/completions",
                    json={**CHAT, "model": "leaky-ok"},
                    headers={"Authorization": f"Bearer {fake_key}"},
                )
                assert bad.status_code == 401
                query_key = await c.post(
                    f"/v1/chat/completions?key={api_key}",
                    json={**CHAT, "model": "nope"},
                    headers={"Authorization": f"Bearer {api_key}"},
                )
                answers += [bad.text, query_key.text]
                await asyncio.sleep(0.5)  # a few flush intervals: every row and access line
                metrics = (await c.get("/metrics", headers=admin)).text
        finally:
            proc.terminate()
    log = proc.log()
    rows = json.dumps(query(gw.db_path, "SELECT * FROM usage_events"), default=str)
    created = {
        "master key": master,
        "gateway key (api)": api_key,
        "gateway key (cli)": cli_key,
        "fake gateway key": fake_key,
        "provider key (config)": upstream_key,
        "provider key (env)": plain_key,
        "provider key (config placeholder)": "placeholder-config-key",
        "provider key (stored)": stored_key,
        "signed URL secret": url_secret,
        "SLUICE_SECRET_KEY": secret_key,
    }
    outputs = {"log": log, "metrics": metrics, "usage rows": rows, "answers": "\n".join(answers)}
    leaks = [
        f"{what} in {where}"
        for what, secret in created.items()
        for where, text in outputs.items()
        if secret in text
    ]
    assert leaks == []
    # The run did produce the outputs searched: JSON access lines and error rows.
    assert log.count('"logger":"sluice.access"') >= 36
    assert "provider_auth" in rows and "***" in rows
    # The caller's gateway key never went upstream.
    upstream_seen = json.dumps(leaky.headers)
    assert api_key not in upstream_seen and cli_key not in upstream_seen
