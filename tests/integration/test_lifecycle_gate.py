"""The app while it does not serve: started with its database down (and the database then
coming up, frozen or not), and draining. Every route but the probes answers 503 in its own
error shape; the probes say why."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx

from sluice.lifecycle import Phase
from tests.integration.conftest import MASTER, make_settings, running
from tests.services import PrivatePostgres

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "mock-gpt", "max_tokens": 5, "messages": CHAT["messages"]}


async def _refused(client: httpx.AsyncClient, code: str) -> None:
    for method, path, body in (
        ("POST", "/v1/chat/completions", CHAT),
        ("GET", "/v1/models", None),
        ("GET", "/api/v1/keys", None),
        ("GET", "/ui/login", None),
        ("GET", "/metrics", None),
    ):
        resp = await client.request(method, path, json=body)
        assert resp.status_code == 503, (path, resp.text)
        assert resp.json()["error"]["code"] == code, (path, resp.text)
        assert int(resp.headers["retry-after"]) > 0
    anthropic = await client.post("/v1/messages", json=MESSAGES)
    assert anthropic.status_code == 503
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "api_error"
    assert (await client.get("/health/live")).status_code == 200


async def _wait_ready(client: httpx.AsyncClient, *, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while (resp := await client.get("/health/ready")).status_code != 200:
        assert time.monotonic() < deadline, resp.text
        await asyncio.sleep(0.05)


async def test_started_with_the_database_down_then_up(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    private_postgres.stop()
    settings = make_settings(tmp_path, database_url=private_postgres.url, startup_retry_max_s=0.2)
    async with running(settings) as (app, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "starting"
        assert ready.json()["waiting_for"] == "the database"
        assert ready.json()["database"].startswith("unavailable")
        await _refused(client, "dependency_unavailable")

        private_postgres.start()
        await _wait_ready(client)
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert (await client.get("/api/v1/keys")).status_code == 200
        assert app.runtime is not None
        assert {t.get_name() for t in app.runtime.tasks if not t.done()} >= {
            "key-refresh",
            "alerts",
            "retention",
            "usage-writer",
        }


async def test_a_frozen_database_at_start_does_not_block_the_start(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    """A database that accepts connections but never answers: the first attempt gives up at
    its deadline and the app serves its 503s meanwhile; thawed, it becomes ready."""
    private_postgres.freeze()
    try:
        settings = make_settings(
            tmp_path, database_url=private_postgres.url, startup_retry_max_s=0.2
        )
        async with running(settings) as (_, client):
            await _refused(client, "dependency_unavailable")
            private_postgres.thaw()
            await _wait_ready(client)
    finally:
        private_postgres.thaw()


async def test_draining_refuses_new_requests(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (app, client):
        assert (await client.get("/health/ready")).status_code == 200
        await app._life.drain(grace_s=1)  # what SIGTERM starts (sluice.lifecycle)
        assert app._life.phase is Phase.DRAINING
        ready = await client.get("/health/ready")
        assert (ready.status_code, ready.json()) == (503, {"status": "shutting down"})
        await _refused(client, "shutting_down")
        resp = await client.post("/v1/chat/completions", json=CHAT)
        assert resp.headers["connection"] == "close", "the retry goes to a new connection"


async def test_no_401_before_the_keys_are_loaded(tmp_path: Path) -> None:
    """Until the database answered, no key can be checked: a client must retry, not give up
    on its key."""
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed.getsockname()[1]}/test"
        async with running(make_settings(tmp_path, database_url=url)) as (_, client):
            for key in (MASTER, "sk-slc-unknown", ""):
                resp = await client.post(
                    "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}
                )
                assert resp.status_code == 503
                assert resp.json()["error"]["code"] == "dependency_unavailable"
