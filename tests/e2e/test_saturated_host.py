"""A host saturated by other processes: the gateway still accounts every request and still
exits promptly at SIGTERM.

SQLite's worker threads run at idle-time scheduling so that usage inserts never take the
core from the event loop; busy loops of other processes on every core would starve them.
The usage writer then runs them as ordinary threads while writes fail and for the last
flush at shutdown. Here the test makes the load itself once the gateway is up: several
busy processes per core, at the gateway's own priority, until it has exited."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import query, start_gateway

pytestmark = pytest.mark.e2e

REQUESTS = 200
CONCURRENCY = 8
GRACE_S = 5
BUSY_PER_CORE = 3
EXIT_WITHIN_S = GRACE_S + 15
"""The drain ends at once (nothing in flight); the rest is the last flush on a host that
gives the gateway a fraction of a core."""


@contextlib.contextmanager
def busy_host() -> Iterator[None]:
    """Busy processes on every core, several per core, until the block ends."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(BUSY_PER_CORE * (os.cpu_count() or 1))
    ]
    try:
        yield
    finally:
        for proc in loops:
            proc.kill()
        for proc in loops:
            proc.wait(timeout=10)


async def _send_all(base_url: str, key: str) -> list[int]:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "m-chat", "messages": [{"role": "user", "content": "busy"}]}
    statuses: list[int] = []
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:

        async def one() -> None:
            async with slots:
                resp = await client.post("/v1/chat/completions", json=body)
                statuses.append(resp.status_code)

        await asyncio.gather(*(one() for _ in range(REQUESTS)))
    return statuses


def test_every_row_is_written_and_the_gateway_exits_on_a_saturated_host(
    e2e_dir: Path, mock_port: int, down_port: int, echo_port: int
) -> None:
    gw = start_gateway(
        e2e_dir / "saturated",
        mock_port,
        down_port,
        echo_port,
        SLUICE_SHUTDOWN_GRACE_S=str(GRACE_S),
    )
    try:
        with busy_host():
            statuses = asyncio.run(_send_all(gw.base_url, gw.key))
            assert statuses == [200] * REQUESTS
            started = time.monotonic()
            gw.proc.popen.send_signal(signal.SIGTERM)
            code = gw.proc.popen.wait(timeout=EXIT_WITHIN_S)
            took = time.monotonic() - started
    finally:
        gw.proc.kill()
    assert code == 0, f"exit status {code} after {took:.1f} s"
    [row] = query(
        gw.db_path,
        "SELECT count(*) AS n FROM usage_events WHERE key_id = ? AND status = 200",
        gw.key_id,
    )
    assert row["n"] == REQUESTS
    assert "Traceback" not in gw.proc.log()
