"""A PostgreSQL outage while the gateway serves (after it was ready): the admin API and the
console answer 503 ``dependency_unavailable`` with ``Retry-After`` (never 500) within a
bounded time even when the database is frozen; readiness says the database is unavailable;
the data plane keeps serving existing keys from memory; the periodic tasks log one line when
the outage starts and one when it ends, no traceback; and everything works again after."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.app import SluiceApp
from tests.console.support import Browser, set_password, signed_in
from tests.integration.conftest import make_settings, running
from tests.logs import has_traceback
from tests.services import PrivatePostgres, PrivateRedis

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
BOUND_S = 30.0
"""Every wait of these tests ends by then (a hang fails the test instead of blocking it)."""


def _settings(tmp_path: Path, url: str) -> Any:
    return make_settings(
        tmp_path,
        database_url=url,
        database_connect_timeout_s=1.0,
        database_command_timeout_s=1.0,
        key_refresh_interval_s=0.1,
    )


async def _setup(app: SluiceApp, client: httpx.AsyncClient) -> str:
    """A gateway key and a console user (``ops@example.com``); returns the key."""
    created = await client.post("/api/v1/keys", json={"name": "before"})
    assert created.status_code == 201, created.text
    user = await client.post("/api/v1/users", json={"email": "ops@example.com", "name": "Ops"})
    assert user.status_code == 201, user.text
    await set_password(app, user.json()["id"])
    key: str = created.json()["key"]
    return key


async def _while_down(client: httpx.AsyncClient, console: Browser, key: str) -> None:
    async with asyncio.timeout(BOUND_S):  # each answer comes, bounded by the timeouts
        admin = await client.get("/api/v1/keys")
        page = await console.client.get("/ui/keys")
        ready = await client.get("/health/ready")
    assert admin.status_code == 503, admin.text
    assert admin.json()["error"]["code"] == "dependency_unavailable"
    assert int(admin.headers["retry-after"]) > 0
    assert page.status_code == 503, page.text
    assert "text/html" in page.headers["content-type"]
    assert "Temporarily unavailable" in page.text
    assert int(page.headers["retry-after"]) > 0
    assert ready.status_code == 503, ready.text
    assert ready.json()["database"].startswith("unavailable"), ready.json()
    # The data plane serves the keys it holds in memory; what it must read from the
    # database (a stored response) is a 503 too.
    chat = await client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key))
    assert chat.status_code == 200, chat.text
    async with asyncio.timeout(BOUND_S):
        stored = await client.get("/v1/responses/resp_none", headers=_bearer(key))
    assert stored.status_code == 503, stored.text
    assert stored.json()["error"]["code"] == "dependency_unavailable"


async def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _key_refresh_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("key refresh")]


async def _outage_then_back(
    client: httpx.AsyncClient,
    console: Browser,
    key: str,
    caplog: pytest.LogCaptureFixture,
    *,
    back: Any,
) -> None:
    await _while_down(client, console, key)

    async def refresh_failed() -> bool:
        return any(r.levelno == logging.WARNING for r in _key_refresh_lines(caplog))

    await _until(refresh_failed, "the key refresh said the database is unavailable")
    await asyncio.sleep(0.5)  # several more refresh attempts while it is down
    await _while_down(client, console, key)
    back()

    async def admin_answers() -> bool:
        return (await client.get("/api/v1/keys")).status_code == 200

    async def refresh_recovered() -> bool:
        return any(r.levelno == logging.INFO for r in _key_refresh_lines(caplog))

    await _until(admin_answers, "the admin API answers once the database is back")
    await _until(refresh_recovered, "the key refresh said the database answers again")
    assert (await console.client.get("/ui/keys")).status_code == 200
    assert (await client.get("/health/ready")).status_code == 200
    made = await client.post("/api/v1/keys", json={"name": "after"})
    assert made.status_code == 201, made.text
    chat = await client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key))
    assert chat.status_code == 200, chat.text


def _assert_one_line_per_edge(caplog: pytest.LogCaptureFixture) -> None:
    sluice = [r for r in caplog.records if r.name.startswith("sluice")]
    tracebacks = [r.getMessage() for r in sluice if has_traceback(r)]
    assert not tracebacks, tracebacks
    lines = [(r.levelno, r.getMessage().split(":")[0]) for r in _key_refresh_lines(caplog)]
    assert lines == [
        (logging.WARNING, "key refresh failed"),
        (logging.INFO, "key refresh works again"),
    ]
    warned = [r.getMessage() for r in sluice if r.levelno >= logging.WARNING]
    for task in (
        "key refresh",
        "alert check (budgets)",
        "alert check (breakers)",
        "usage database",
    ):
        assert sum(m.startswith(task) for m in warned) <= 1, warned


async def test_a_stopped_database_while_serving(
    tmp_path: Path, private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(_settings(tmp_path, private_postgres.url)) as (app, client):
        key = await _setup(app, client)
        async with signed_in(app, "ops@example.com") as console:
            caplog.set_level(logging.INFO, logger="sluice")
            private_postgres.stop()
            await _outage_then_back(client, console, key, caplog, back=private_postgres.start)
    _assert_one_line_per_edge(caplog)


async def test_a_frozen_database_while_serving(
    tmp_path: Path, private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that keeps its connections open but never answers: each admin request
    gives up at the command (then connect) timeout instead of hanging."""
    async with running(_settings(tmp_path, private_postgres.url)) as (app, client):
        key = await _setup(app, client)
        async with signed_in(app, "ops@example.com") as console:
            caplog.set_level(logging.INFO, logger="sluice")
            private_postgres.freeze()
            try:
                await _outage_then_back(client, console, key, caplog, back=private_postgres.thaw)
            finally:
                private_postgres.thaw()
    _assert_one_line_per_edge(caplog)


async def test_a_redis_outage_logs_the_key_subscription_once_each_way(
    tmp_path: Path, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, redis_url=private_redis.url)
    async with running(settings) as (_, client):
        assert (await client.get("/health/ready")).status_code == 200
        caplog.set_level(logging.INFO, logger="sluice")

        def lines() -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if r.getMessage().startswith("Redis key-change subscription")
            ]

        async def lost() -> bool:
            return bool(lines())

        async def back() -> bool:
            return any(r.levelno == logging.INFO for r in lines())

        private_redis.stop()
        await _until(lost, "the subscription said Redis is unavailable")
        await asyncio.sleep(2.5)  # more reconnection attempts (one a second)
        private_redis.start()
        await _until(back, "the subscription said Redis answers again")
    assert [(r.levelno, has_traceback(r)) for r in lines()] == [
        (logging.WARNING, False),
        (logging.INFO, False),
    ], [r.getMessage() for r in lines()]
