"""The bad-key guard through the whole app: 429 after repeated bad keys from one address on
the data plane and the admin API, other addresses unaffected, ``X-Forwarded-For`` honoured
only from a trusted proxy, and nothing refused when the guard is off (the default)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from sluice.app import SluiceApp
from tests.integration.conftest import MASTER, make_settings, running

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
LIMIT = 3


@asynccontextmanager
async def _from(app: SluiceApp, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ``peer``."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client


async def _chat(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}", **headers}
    )


async def test_an_address_with_repeated_bad_keys_gets_429_others_do_not(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bad_key_max_failures=LIMIT, bad_key_window_s=300)
    async with running(settings) as (app, _), _from(app, "203.0.113.5") as attacker:
        for i in range(LIMIT):
            assert (await _chat(attacker, f"sk-slc-guess{i}")).status_code == 401
        refused = await _chat(attacker, MASTER)  # refused before the key is looked at
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 300
        error = refused.json()["error"]
        assert error["code"] == "too_many_invalid_keys"
        assert error["type"] == "rate_limit_error"
        messages = await attacker.post(
            "/v1/messages",
            json={"model": "mock-gpt", "max_tokens": 8, "messages": CHAT["messages"]},
            headers={"x-api-key": MASTER, "anthropic-version": "2023-06-01"},
        )
        assert messages.status_code == 429
        assert messages.json()["type"] == "error"
        models = await attacker.get("/v1/models", headers={"authorization": f"Bearer {MASTER}"})
        assert models.status_code == 429

        async with _from(app, "203.0.113.6") as neighbour:
            assert (await _chat(neighbour, MASTER)).status_code == 200
            assert (await _chat(neighbour, "sk-slc-typo")).status_code == 401


async def test_the_admin_api_counts_and_refuses_too(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bad_key_max_failures=LIMIT)
    async with running(settings) as (app, _), _from(app, "203.0.113.20") as attacker:
        for _ in range(LIMIT):
            denied = await attacker.get("/api/v1/users", headers={"x-api-key": "sk-nope"})
            assert denied.status_code == 401
        refused = await attacker.get("/api/v1/users", headers={"x-api-key": MASTER})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert (await _chat(attacker, MASTER)).status_code == 429  # one count for all routes


async def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bad_key_max_failures=LIMIT, trusted_proxies=("10.0.0.0/8",))
    async with running(settings) as (app, _):
        async with _from(app, "10.0.0.2") as proxy:
            client = {"x-forwarded-for": "198.51.100.7"}
            for _ in range(LIMIT):
                assert (await _chat(proxy, "sk-slc-bad", **client)).status_code == 401
            assert (await _chat(proxy, MASTER, **client)).status_code == 429
            # Everyone else behind the same proxy is served: the proxy itself is not refused.
            other = {"x-forwarded-for": "6.6.6.6, 198.51.100.8"}
            assert (await _chat(proxy, MASTER, **other)).status_code == 200
            assert (await _chat(proxy, MASTER)).status_code == 200

        async with _from(app, "203.0.113.9") as direct:
            # Not a trusted proxy: a new X-Forwarded-For per try does not escape the count.
            for i in range(LIMIT):
                forged = {"x-forwarded-for": f"198.51.100.{100 + i}"}
                assert (await _chat(direct, "sk-slc-bad", **forged)).status_code == 401
            forged = {"x-forwarded-for": "198.51.100.200"}
            assert (await _chat(direct, MASTER, **forged)).status_code == 429
            # ... nor can it frame the address it names.
        async with _from(app, "10.0.0.2") as proxy:
            framed = {"x-forwarded-for": "198.51.100.100"}
            assert (await _chat(proxy, MASTER, **framed)).status_code == 200


async def test_without_the_setting_bad_keys_are_never_throttled(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (app, _), _from(app, "203.0.113.5") as c:
        for _ in range(20):
            assert (await _chat(c, "sk-slc-guess")).status_code == 401
        assert (await _chat(c, MASTER)).status_code == 200
