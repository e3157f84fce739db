"""``sluice serve`` on a PostgreSQL that stops while it serves: the admin API and the console
answer 503 with ``Retry-After`` (not 500), readiness names the database, the data plane
keeps serving an existing key; the log has one line when the outage starts and one when it
ends per task, and no traceback; once the database is back everything answers 200."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import Proc, spawn_keyless_gateway
from tests.services import PrivatePostgres

pytestmark = pytest.mark.e2e

CHAT = {"model": "m-chat", "messages": [{"role": "user", "content": "hello"}]}
BOUND_S = 30.0


def _until(proc: Proc, check: object, what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}\n{proc.log()}"
        proc.pause(0.1)


def _unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["retry-after"]) > 0


def test_database_stops_while_serving(
    private_postgres: PrivatePostgres, e2e_dir: Path, mock_port: int, down_port: int, echo_port: int
) -> None:
    gw = spawn_keyless_gateway(
        e2e_dir / "db-outage-running",
        mock_port,
        down_port,
        echo_port,
        SLUICE_DATABASE_URL=private_postgres.url,
        SLUICE_DATABASE_CONNECT_TIMEOUT_S="2",
        SLUICE_DATABASE_COMMAND_TIMEOUT_S="2",
    )
    master, proc = gw.master_key, gw.proc
    admin = {"Authorization": f"Bearer {master}"}
    try:
        proc.wait_http(f"{gw.base_url}/health/ready")
        with httpx.Client(base_url=gw.base_url, timeout=BOUND_S) as client:
            created = client.post("/api/v1/keys", json={"name": "before"}, headers=admin)
            assert created.status_code == 201, created.text
            user = {"Authorization": f"Bearer {created.json()['key']}"}
            assert client.post("/v1/chat/completions", json=CHAT, headers=user).status_code == 200

            private_postgres.stop()
            keys = client.get("/api/v1/keys", headers=admin)
            _unavailable(keys)
            assert keys.json()["error"]["code"] == "dependency_unavailable"
            # A session cookie makes the console look the session up in the database.
            page = client.get("/ui/keys", headers={"Cookie": "sluice_session=" + "x" * 40})
            _unavailable(page)
            assert "text/html" in page.headers["content-type"]
            ready = client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["database"].startswith("unavailable"), ready.text
            for _ in range(3):
                chat = client.post("/v1/chat/completions", json=CHAT, headers=user)
                assert chat.status_code == 200, chat.text
            proc.pause(1.5)  # several key refreshes (every 0.2 s) fail meanwhile
            _unavailable(client.get("/api/v1/keys", headers=admin))

            private_postgres.start()
            _until(
                proc,
                lambda: client.get("/api/v1/keys", headers=admin).status_code == 200,
                "the admin API answers once the database is back",
            )
            _until(
                proc,
                lambda: (
                    "usage database reachable again" in proc.log()
                    and "key refresh works again" in proc.log()
                ),
                "the tasks said the database answers again",
            )
            assert client.get("/health/ready").status_code == 200
            assert client.post("/v1/chat/completions", json=CHAT, headers=user).status_code == 200
        log = proc.log()
        assert log.count("key refresh failed: the database is unavailable") == 1, log
        assert log.count("key refresh works again") == 1, log
        assert log.count("usage database unreachable") == 1, log
        assert log.count("usage database reachable again") == 1, log
        stop_gateway(gw)  # exit 0 and no traceback anywhere in the log
    finally:
        proc.kill()
