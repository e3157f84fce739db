"""Started while its PostgreSQL is down, ``sluice serve`` keeps running: liveness 200,
readiness and every other route 503 (``dependency_unavailable`` with ``Retry-After``); when
the database comes back it migrates, loads its keys and becomes ready by itself."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import (
    Gateway,
    Proc,
    base_env,
    free_port,
    gateway_config,
    reserve_closed_port,
    spawn,
    spawn_keyless_gateway,
)
from tests.services import PrivatePostgres

pytestmark = pytest.mark.e2e

CHAT = {"model": "m-chat", "messages": [{"role": "user", "content": "hello"}]}
READY_TIMEOUT_S = 30.0


def _assert_dependency_unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["retry-after"]) > 0
    assert resp.headers["x-request-id"].startswith("req_")


def test_serve_waits_for_the_database(
    private_postgres: PrivatePostgres, e2e_dir: Path, mock_port: int, down_port: int, echo_port: int
) -> None:
    private_postgres.stop()
    workdir = e2e_dir / "db-down"
    gw = spawn_keyless_gateway(
        workdir,
        mock_port,
        down_port,
        echo_port,
        SLUICE_DATABASE_URL=private_postgres.url,
        SLUICE_STARTUP_RETRY_MAX_S="0.5",
    )
    master, proc = gw.master_key, gw.proc
    try:
        proc.wait_http(f"{gw.base_url}/health/live")
        with httpx.Client(base_url=gw.base_url, timeout=10) as client:
            _while_down(client, master)
            proc.pause(1.0)  # several retries later it still runs, still not ready
            assert client.get("/health/ready").status_code == 503

            private_postgres.start()
            _wait_ready(client, proc)
            admin = {"Authorization": f"Bearer {master}"}
            created = client.post("/api/v1/keys", json={"name": "after"}, headers=admin)
            assert created.status_code == 201, created.text
            key = created.json()["key"]
            resp = client.post(
                "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["choices"][0]["message"]["content"]
        log = proc.log()
        # The CLI's line, then the app's: once for the outage, not once per attempt.
        assert log.count("the database is unavailable (ConnectionRefusedError)") == 1, log
        assert log.count("the database is unavailable (ConnectionRefusedError: ") == 1, log
        assert "the database answers again" in log, log
        stop_gateway(gw)
    finally:
        proc.kill()


def _while_down(client: httpx.Client, master: str) -> None:
    ready = client.get("/health/ready")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "starting"
    assert body["database"].startswith("unavailable"), body

    # The data plane: no key can be checked yet, so no 401 either (a client must retry).
    for headers in ({"Authorization": "Bearer sk-slc-whatever"}, {}):
        resp = client.post("/v1/chat/completions", json=CHAT, headers=headers)
        _assert_dependency_unavailable(resp)
        error = resp.json()["error"]
        assert error["code"] == "dependency_unavailable", error
        assert "database" in error["message"]

    messages = client.post(
        "/v1/messages",
        json={"model": "m-chat", "max_tokens": 5, "messages": CHAT["messages"]},
        headers={"x-api-key": master},
    )
    _assert_dependency_unavailable(messages)
    assert messages.json()["type"] == "error"  # the Anthropic shape on the Anthropic route

    # The control plane answers 503 too, not 500.
    admin = {"Authorization": f"Bearer {master}"}
    _assert_dependency_unavailable(client.get("/api/v1/keys", headers=admin))
    _assert_dependency_unavailable(client.get("/ui/login"))
    _assert_dependency_unavailable(client.get("/v1/models", headers=admin))


def _wait_ready(client: httpx.Client, proc: Proc) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        resp = client.get("/health/ready")
        if resp.status_code == 200:
            assert resp.json()["status"] == "ready"
            return
        assert time.monotonic() < deadline, f"not ready once the database is back: {resp.text}"
        proc.pause(0.1)


def test_sigterm_while_waiting_for_the_database(
    e2e_dir: Path, mock_port: int, down_port: int, echo_port: int
) -> None:
    """A process that never reached its database still stops cleanly, with status 0."""
    workdir = e2e_dir / "db-never"
    workdir.mkdir()
    master = "sk-master-" + secrets.token_hex(16)
    closed = reserve_closed_port()
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed.getsockname()[1]}/test"
        env = base_env(workdir / "data", master, SLUICE_DATABASE_URL=url)
        config = workdir / "sluice.yaml"
        config.write_text(gateway_config(mock_port, down_port, echo_port))
        port = free_port()
        args = ["serve", "--port", str(port), "--config", str(config)]
        proc = spawn("gateway", args, env, workdir / "gw.log")
        try:
            proc.wait_http(f"http://127.0.0.1:{port}/health/live")
            stop_gateway(Gateway(proc, port, env, workdir / "data", master, key="", key_id=""))
        finally:
            proc.kill()
    finally:
        closed.close()
