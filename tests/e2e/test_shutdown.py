"""SIGTERM drains: readiness turns 503 and new requests get 503 shutting_down at once,
in-flight requests finish within the grace period, a request still running at the deadline
ends with an explicit error (a stream with a terminal event, its row partial), every one of
them is billed, and the process exits with status 0."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Gateway, query, sse_payloads, start_gateway

pytestmark = pytest.mark.e2e

GRACE_S = 4
MESSAGES = [{"role": "user", "content": "drain"}]


@dataclass
class Drain:
    gateway: Gateway
    short: httpx.Response
    """A request whose upstream answers inside the grace period."""
    long_request_id: str
    long_raw: str
    """The SSE body of a stream still running at the deadline."""
    long_broken: str | None
    """The client-side error if that stream was cut without a proper end."""
    stuck: httpx.Response | None
    """A non-streaming request whose upstream answers after the deadline (``None``: the
    connection broke without an answer)."""
    ended_after_s: float
    exit_code: int | None
    during: list[httpx.Response]
    """Asked while draining: readiness, then a chat request on a kept-alive connection, then
    one on a new connection."""


@pytest.fixture(scope="module")
def drain(e2e_dir: Path, mock_port: int, down_port: int, echo_port: int) -> Iterator[Drain]:
    """One SIGTERM scenario, run once; the tests below assert on different parts of it."""
    gw = start_gateway(
        e2e_dir / "drain", mock_port, down_port, echo_port, SLUICE_SHUTDOWN_GRACE_S=str(GRACE_S)
    )
    try:
        result = asyncio.run(_scenario(gw, mock_port))
        # The process must be gone within the grace period plus the shutdown flush.
        result.exit_code = gw.proc.popen.wait(timeout=10)
        yield result
    finally:
        gw.proc.kill()


async def _mock_requests(client: httpx.AsyncClient, mock_port: int) -> int:
    resp = await client.get(f"http://127.0.0.1:{mock_port}/health")
    return int(resp.json()["requests"])


async def _scenario(gw: Gateway, mock_port: int) -> Drain:
    headers = {"Authorization": f"Bearer {gw.key}"}
    async with httpx.AsyncClient(base_url=gw.base_url, headers=headers, timeout=30) as client:
        before = await _mock_requests(client, mock_port)

        async def short() -> httpx.Response:
            # m-slow: the upstream answers after 3 s, inside the grace period.
            return await client.post(
                "/v1/chat/completions", json={"model": "m-slow", "messages": MESSAGES}
            )

        async def long() -> tuple[str, str, str | None]:
            # m-slow-stream: 50 chunks x 200 ms = 10 s, still running at the deadline.
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

        async def stuck() -> httpx.Response | None:
            # m-slower: the upstream answers after 8 s, after the deadline.
            try:
                return await client.post(
                    "/v1/chat/completions", json={"model": "m-slower", "messages": MESSAGES}
                )
            except httpx.HTTPError:
                return None

        short_task = asyncio.ensure_future(short())
        long_task = asyncio.ensure_future(long())
        stuck_task = asyncio.ensure_future(stuck())
        # All three calls have reached the upstream before the signal.
        deadline = time.monotonic() + 5
        while await _mock_requests(client, mock_port) < before + 3:
            assert time.monotonic() < deadline, "requests never reached the upstream"
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=gw.base_url, headers=headers) as idle:
            assert (await idle.get("/health/ready")).status_code == 200  # kept alive
            signalled = time.monotonic()
            gw.proc.popen.send_signal(signal.SIGTERM)
            during = await _while_draining(idle)
        resp = await short_task
        request_id, raw, broken = await long_task
        stuck_resp = await stuck_task
        ended_after = time.monotonic() - signalled

    return Drain(gw, resp, request_id, raw, broken, stuck_resp, ended_after, None, during)


async def _while_draining(idle: httpx.AsyncClient) -> list[httpx.Response]:
    deadline = time.monotonic() + 2
    while (ready := await idle.get("/health/ready")).status_code == 200:
        assert time.monotonic() < deadline, "readiness still 200 after SIGTERM"
        await asyncio.sleep(0.02)
    body = {"model": "m-chat", "messages": MESSAGES}
    kept = await idle.post("/v1/chat/completions", json=body)
    fresh = await idle.post("/v1/chat/completions", json=body)  # the first one closed
    return [ready, kept, fresh]


def test_sigterm_drains_and_bills_every_request(drain: Drain) -> None:
    gw = drain.gateway
    assert drain.exit_code == 0, gw.proc.log()
    assert drain.short.status_code == 200, "a request that fits in the grace period finishes"
    assert drain.short.json()["choices"][0]["message"]["content"]
    assert drain.ended_after_s < GRACE_S + 3

    rows = {r["request_id"]: r for r in query(gw.db_path, "SELECT * FROM usage_events")}
    assert len(rows) == 3, rows
    stuck = [r for r in rows.values() if r["model"] == "m-slower"]
    assert len(stuck) == 1
    assert stuck[0]["status"] == 503, stuck
    assert stuck[0]["error_kind"] == "gateway_shutting_down"
    assert not stuck[0]["partial"], "nothing of that answer reached the client"
    assert rows[drain.short.headers["x-request-id"]]["status"] == 200
    long_row = rows[drain.long_request_id]
    assert long_row["status"] == 503, long_row
    assert long_row["error_kind"] == "gateway_shutting_down"
    assert long_row["partial"] == 1, "the stream was cut at the deadline"
    assert long_row["streamed"] == 1
    assert long_row["completion_tokens"] > 0
    assert "[DONE]" not in sse_payloads(drain.long_raw)


def test_draining_refuses_new_requests(drain: Drain) -> None:
    """Readiness turns 503 at once; a request on a connection kept alive, and one on a new
    connection (the listener stays open while draining), get 503 shutting_down."""
    ready, kept, fresh = drain.during
    assert ready.status_code == 503, ready.text
    assert ready.json() == {"status": "shutting down"}
    for resp in (kept, fresh):
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "shutting_down"
        assert resp.headers["retry-after"] == "1"
        assert resp.headers["connection"] == "close"
    log = drain.gateway.proc.log()
    assert "SIGTERM: draining" in log, log
    assert "drain deadline: ending 2 request(s)" in log, log
    rows = query(drain.gateway.db_path, "SELECT * FROM usage_events")
    assert len(rows) == 3, "a refused request has no principal and so no usage row"


def test_sigterm_deadline_ends_stream_with_error_event(drain: Drain) -> None:
    """DESIGN invariants 4 and 8: at the drain deadline a running stream ends with an
    explicit error event, never a broken connection; and no traceback is logged."""
    payloads = sse_payloads(drain.long_raw)
    assert drain.long_broken is None, (
        f"the stream was cut without an error event: {drain.long_broken}"
    )
    assert payloads, "no events at all"
    assert set(json.loads(payloads[-1])) == {"error"}, payloads[-1]
    assert "Exception in ASGI application" not in drain.gateway.proc.log()


def test_sigterm_deadline_answers_503_in_openai_shape(drain: Drain) -> None:
    assert drain.stuck is not None, "the connection broke without an answer"
    assert drain.stuck.status_code == 503, (drain.stuck.status_code, drain.stuck.text)
    assert drain.stuck.json()["error"]["code"] == "shutting_down"
    assert drain.stuck.headers["retry-after"] == "1"
    assert drain.stuck.headers["x-request-id"].startswith("req_")
