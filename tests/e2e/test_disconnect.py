"""Client disconnects cancel the upstream call and are billed as 499 at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import httpx
import pytest

from tests.e2e.support import Gateway, query, wait_row

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hello"}]


async def test_streaming_disconnect_is_billed_499(gateway: Gateway) -> None:
    body = {"model": "m-slow-stream", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {gateway.key}"}
    started = time.monotonic()
    events: list[str] = []
    async with (
        httpx.AsyncClient(base_url=gateway.base_url, headers=headers, timeout=10) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 200
        request_id = resp.headers["x-request-id"]
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                events.append(line)
            if len(events) == 2:
                break
        # Leaving the block with the body unread closes the connection.
    closed_after_ms = (time.monotonic() - started) * 1000
    assert len(events) == 2

    # The whole stream would take 50 x 200 ms = 10 s; the row must come long before.
    row = await wait_row(gateway.db_path, request_id=request_id, timeout_s=2.0)
    assert row["status"] == 499
    assert row["error_kind"] == "client_disconnected"
    assert row["streamed"] == 1
    assert row["completion_tokens"] > 0
    # The upstream usage chunk never came (the call was cancelled), so the count is ours.
    assert row["tokens_estimated"] == 1
    assert row["latency_ms"] < closed_after_ms + 1000, (row["latency_ms"], closed_after_ms)


async def test_non_streaming_disconnect_is_billed_499(gateway: Gateway) -> None:
    """``m-slow`` answers after 3 s; the client gives up after 0.5 s."""
    user = f"disc-{uuid.uuid4().hex}"
    body = {"model": "m-slow", "messages": MESSAGES, "user": user}
    headers = {"Authorization": f"Bearer {gateway.key}"}
    timeout = httpx.Timeout(10.0, read=0.5)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/v1/chat/completions", json=body, timeout=timeout)
    row = await wait_row(gateway.db_path, end_user=user, timeout_s=2.0)
    seen_after_s = time.monotonic() - started
    assert seen_after_s < 2.5, "the row must be written well before the upstream would answer"
    assert row["status"] == 499
    assert row["error_kind"] == "client_disconnected"
    assert row["streamed"] == 0
    assert row["latency_ms"] < 1500, row["latency_ms"]
    assert row["attempts"] == 1


async def test_streaming_disconnect_before_first_byte_is_billed_499(gateway: Gateway) -> None:
    """``m-slow`` streams its first chunk after 3 s; the client leaves after 0.5 s, before
    the gateway has sent anything."""
    user = f"disc-ttft-{uuid.uuid4().hex}"
    body = {"model": "m-slow", "messages": MESSAGES, "user": user, "stream": True}
    headers = {"Authorization": f"Bearer {gateway.key}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/v1/chat/completions", json=body, timeout=httpx.Timeout(10.0, read=0.5)
            )
    row = await wait_row(gateway.db_path, end_user=user, timeout_s=2.0)
    assert row["status"] == 499
    assert row["error_kind"] == "client_disconnected"
    assert row["streamed"] == 1
    assert row["completion_tokens"] == 0
    assert row["latency_ms"] < 1500


def _count_anonymous_rows(gateway: Gateway) -> dict[int, int]:
    rows = query(
        gateway.db_path,
        "SELECT status, count(*) AS n FROM usage_events WHERE model IS NULL GROUP BY status",
    )
    return {r["status"]: r["n"] for r in rows}


async def _wait_new_anonymous_row(gateway: Gateway, before: dict[int, int]) -> int:
    """The status of the one row without a model that appeared since ``before``."""
    deadline = time.monotonic() + 3
    while True:
        now = _count_anonymous_rows(gateway)
        new = {s: n - before.get(s, 0) for s, n in now.items() if n != before.get(s, 0)}
        if new:
            assert list(new.values()) == [1], new
            return next(iter(new))
        assert time.monotonic() < deadline, "no usage row for the abandoned upload"
        await asyncio.sleep(0.05)


async def _abandon_upload(gateway: Gateway, body_prefix: bytes, declared: int) -> None:
    """Send headers declaring ``declared`` body bytes, then ``body_prefix``, then hang up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"host: 127.0.0.1:{gateway.port}\r\n"
        f"authorization: Bearer {gateway.key}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {declared}\r\n\r\n"
    ).encode()
    writer.write(head + body_prefix)
    await writer.drain()
    # Give the server a moment to start the request, then leave without the rest.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.3)
    writer.close()
    await writer.wait_closed()


async def test_disconnect_during_upload_is_billed_499(gateway: Gateway) -> None:
    before = _count_anonymous_rows(gateway)
    await _abandon_upload(gateway, b'{"model": "m-chat", "mess', declared=200)
    assert await _wait_new_anonymous_row(gateway, before) == 499


async def test_disconnect_before_any_body_byte_is_billed_499(gateway: Gateway) -> None:
    before = _count_anonymous_rows(gateway)
    await _abandon_upload(gateway, b"", declared=200)
    assert await _wait_new_anonymous_row(gateway, before) == 499
