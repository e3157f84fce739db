"""Key changes reach every process: by polling the database, and at once through Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from sluice.auth.service import create_key
from sluice.storage.sql.repository import SqlStorage
from tests.console.support import browser, set_password, sign_in
from tests.integration.conftest import CONFIG, make_settings, running

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


async def _status_within(client: httpx.AsyncClient, key: str, want: int, *, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while True:
        resp = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}
        )
        if resp.status_code == want or time.monotonic() > deadline:
            return resp.status_code
        await asyncio.sleep(0.02)


async def test_keys_made_by_another_process_are_picked_up_by_polling(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, key_refresh_interval_s=0.05)
    async with running(settings) as (_, client):
        other = SqlStorage.from_url(settings.resolved_database_url())  # e.g. `sluice keys create`
        try:
            created = await create_key(other.keys, name="cli", now=time.time())
            assert await _status_within(client, created.secret, 200, seconds=2) == 200
            await other.keys.revoke(created.record.id, at=time.time())
            assert await _status_within(client, created.secret, 401, seconds=2) == 401
        finally:
            await other.close()


async def test_replicas_share_key_changes_through_redis(tmp_path: Path, redis_url: str) -> None:
    # Polling is slowed to a minute, so only the Redis broadcast can make this pass quickly.
    settings = make_settings(tmp_path, redis_url=redis_url, key_refresh_interval_s=60)
    async with running(settings, CONFIG) as (_, a), running(settings, CONFIG) as (_, b):
        created = (await a.post("/api/v1/keys", json={"name": "shared"})).json()
        assert await _status_within(b, created["key"], 200, seconds=2) == 200
        assert (await a.delete(f"/api/v1/keys/{created['id']}")).status_code == 200
        assert await _status_within(b, created["key"], 401, seconds=2) == 401


async def test_readiness_checks_redis_when_configured(tmp_path: Path, redis_url: str) -> None:
    async with running(make_settings(tmp_path, redis_url=redis_url)) as (_, client):
        ready = await client.get("/health/ready")
        assert ready.json() == {"status": "ready", "database": "ok", "redis": "ok"}
    dead = make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0")
    async with running(dead) as (_, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["redis"].startswith("unavailable")


@pytest.mark.usefixtures("postgres_server_url")
async def test_gateway_runs_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url)
    async with running(settings) as (app, client):
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert (await client.get("/health/ready")).json()["database"] == "ok"
        rt = app.runtime
        assert rt is not None
        await rt.usage.flush()
        assert await rt.storage.usage.count() == 1


async def test_a_disabled_user_is_out_on_every_replica_within_a_second(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """Two replicas sharing PostgreSQL and Redis (polling slowed to a minute): disabling a
    person on A ends their console session and stops their key on B within a second."""
    settings = make_settings(
        tmp_path, database_url=postgres_url, redis_url=redis_url, key_refresh_interval_s=60
    )
    async with running(settings) as (app_a, a), running(settings) as (app_b, b):
        org = (await a.post("/api/v1/orgs", json={"name": "acme"})).json()
        user = (
            await a.post(
                "/api/v1/users", json={"email": "ada@acme.org", "name": "Ada", "org_id": org["id"]}
            )
        ).json()
        key = (await a.post("/api/v1/keys", json={"name": "k", "user_id": user["id"]})).json()
        await set_password(app_a, user["id"])
        assert await _status_within(b, key["key"], 200, seconds=2) == 200
        async with browser(app_b) as person:
            assert (await sign_in(person, "ada@acme.org")).status_code == 303
            assert (await person.get("/ui/keys")).status_code == 200

            disabled = await a.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
            assert disabled.status_code == 200, disabled.text
            started = time.monotonic()
            assert await _status_within(b, key["key"], 401, seconds=1) == 401
            page = await person.get("/ui/keys")
            assert time.monotonic() - started < 1.0
            assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
            # Signing in again on B is refused too.
            assert (await sign_in(person, "ada@acme.org")).status_code != 303
