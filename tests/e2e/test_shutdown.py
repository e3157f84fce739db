"""SIGTERM drains: in-flight requests finish within the grace period, a request still running
at the deadline ends with an explicit error, and every one of them is billed."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Gateway, query, sse_payloads, start_gateway

pytestmark = pytest.mark.e2e

GRACE_S = 4
MESSAGES = [{"role": "user", "content": "drain"}]


@pytest.fixture
def drain_gateway(
    e2e_dir: Path, mock_port: int, down_port: int, echo_port: int
) -> Iterator[Gateway]:
    gw = start_gateway(
        e2e_dir / "drain", mock_port, down_port, echo_port, SLUICE_SHUTDOWN_GRACE_S=str(GRACE_S)
    )
    try:
        yield gw
    finally:
        gw.proc.kill()


async def _mock_requests(client: httpx.AsyncClient, mock_port: int) -> int:
    resp = await client.get(f"http://127.0.0.1:{mock_port}/health")
    return int(resp.json()["requests"])


async def test_sigterm_drains_in_flight_requests(drain_gateway: Gateway, mock_port: int) -> None:
    gw = drain_gateway
    headers = {"Authorization": f"Bearer {gw.key}"}
    async with httpx.AsyncClient(base_url=gw.base_url, headers=headers, timeout=30) as client:
        before = await _mock_requests(client, mock_port)

        async def short() -> httpx.Response:
            # Upstream answers after 3 s: inside the grace period.
            return await client.post(
                "/v1/chat/completions", json={"model": "m-slow", "messages": MESSAGES}
            )

        async def long() -> tuple[str, str, str | None]:
            # 50 chunks x 200 ms = 10 s: still running at the deadline.
            body = {"model": "m-slow-stream", "messages": MESSAGES, "stream": True}
            parts: list[str] = []
            broken = None
            async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
                request_id = resp.headers["x-request-id"]
                try:
                    async for part in resp.aiter_text():
                        parts.append(part)
                except httpx.HTTPError as exc:
                    broken = repr(exc)
            return request_id, "".join(parts), broken

        short_task = asyncio.ensure_future(short())
        long_task = asyncio.ensure_future(long())
        # Both calls have reached the upstream before the signal.
        deadline = time.monotonic() + 5
        while await _mock_requests(client, mock_port) < before + 2:
            assert time.monotonic() < deadline, "requests never reached the upstream"
            await asyncio.sleep(0.02)
        signalled = time.monotonic()
        gw.proc.popen.send_signal(signal.SIGTERM)

        resp = await short_task
        request_id, raw, broken = await long_task
        ended_after = time.monotonic() - signalled

    assert resp.status_code == 200, "a request that fits in the grace period must finish"
    assert resp.json()["choices"][0]["message"]["content"]
    assert ended_after < GRACE_S + 3

    while gw.proc.alive():
        assert time.monotonic() - signalled < GRACE_S + 10, "the gateway did not exit"
        await asyncio.sleep(0.05)
    assert gw.proc.popen.returncode in (0, -signal.SIGTERM), gw.proc.log()

    rows = {r["request_id"]: r for r in query(gw.db_path, "SELECT * FROM usage_events")}
    assert len(rows) == 2, rows
    assert rows[resp.headers["x-request-id"]]["status"] == 200
    long_row = rows[request_id]
    assert long_row["status"] == 503, long_row
    assert long_row["error_kind"] == "gateway_unavailable"
    assert long_row["streamed"] == 1
    assert long_row["completion_tokens"] > 0

    # DESIGN invariant 8 / 4: at the deadline the stream ends with an explicit error
    # event, never a silent or broken end.
    payloads = sse_payloads(raw)
    assert "[DONE]" not in payloads
    assert broken is None, f"the stream was cut without an error event: {broken}"
    assert payloads, "no events at all"
    assert set(json.loads(payloads[-1])) == {"error"}, payloads[-1]
