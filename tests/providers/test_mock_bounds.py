"""Whatever it is sent, the mock stays small: bounded answers or a 400 naming the field
(issue #12, point 4), and ``sluice mock-upstream`` exits non-zero when it cannot listen
(point 9)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
import pytest

from sluice.config.providers import MockConfig, Timeouts
from sluice.errors import GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.mock import caps
from sluice.providers.mock.provider import MockProvider
from sluice.types import Endpoint, ProviderRequest

HI = [{"role": "user", "content": "hi"}]
SMALL_BYTES = 64 * 1024
"""Every refused or bounded answer below is smaller than this."""


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    async with session.post(url, data=raw, headers=headers or {}) as resp:
        return resp.status, await resp.read()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 10**18}, "n"),
        ({"n": 0}, "n"),
        ({"best_of": 10**18}, "best_of"),
        ({"n": 129}, "n"),
        ({"model": "chat?completion_tokens=65536", "n": 128}, "n"),
    ],
)
async def test_huge_choice_counts_are_refused(
    upstream: str, session: aiohttp.ClientSession, body: dict[str, Any], param: str
) -> None:
    request = {"model": "chat", "messages": HI, **body}
    status, raw = await _post(session, f"{upstream}/v1/chat/completions", request)
    assert status == 400 and len(raw) < SMALL_BYTES
    assert orjson.loads(raw)["error"]["param"] == param


async def test_float_n_is_refused(upstream: str, session: aiohttp.ClientSession) -> None:
    raw_body = b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "n": 1e18}'
    status, raw = await _post(session, f"{upstream}/v1/chat/completions", raw_body)
    assert status == 400 and orjson.loads(raw)["error"]["param"] == "n"


@pytest.mark.parametrize("stream", [False, True])
async def test_huge_max_tokens_gets_a_bounded_answer(
    upstream: str, session: aiohttp.ClientSession, stream: bool
) -> None:
    request = {"model": "chat", "messages": HI, "max_tokens": 10**18, "stream": stream, "n": 128}
    status, raw = await _post(session, f"{upstream}/v1/chat/completions", request)
    assert status == 200
    # 128 choices of the scripted 64 words, whatever max_tokens says.
    assert len(raw) < 128 * 1024
    if not stream:
        assert orjson.loads(raw)["usage"]["completion_tokens"] == 128 * 64


@pytest.mark.parametrize(
    "script",
    [
        "chat?completion_tokens=1000000000",
        "chat?latency_ms=1e12",
        "chat?chunk_delay_ms=nan",
        "chat?chunks=1000000000",
        "chat?retry_after_s=inf",
        "chat?error_code=" + "x" * 300,
        "chat?completion_tokens=" + "9" * 5000,
    ],
)
async def test_script_parameters_are_bounded(
    upstream: str, session: aiohttp.ClientSession, script: str
) -> None:
    status, raw = await _post(
        session, f"{upstream}/v1/chat/completions", {"model": script, "messages": HI}
    )
    assert status == 400 and len(raw) < SMALL_BYTES


async def test_script_headers_are_bounded(upstream: str, session: aiohttp.ClientSession) -> None:
    status, _ = await _post(
        session,
        f"{upstream}/v1/chat/completions",
        {"model": "chat", "messages": HI},
        {"x-mock-completion-tokens": "100000000"},
    )
    assert status == 400


async def test_embeddings_are_bounded(upstream: str, session: aiohttp.ClientSession) -> None:
    url = f"{upstream}/v1/embeddings"
    status, raw = await _post(session, url, {"model": "embed?dim=4096", "input": ["a"] * 257})
    assert status == 400 and orjson.loads(raw)["error"]["param"] == "input"
    status, _ = await _post(session, url, {"model": "embed?dim=100000", "input": "a"})
    assert status == 400
    status, raw = await _post(session, url, {"model": "embed?dim=4096", "input": ["a"] * 256})
    assert status == 200


async def test_native_formats_are_bounded(upstream: str, session: aiohttp.ClientSession) -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    body = {"model": "chat?completion_tokens=99999999", "max_tokens": 10**18, "messages": HI}
    status, _ = await _post(session, f"{upstream}/v1/messages", body, headers)
    assert status == 400
    body["model"] = "chat"
    status, raw = await _post(session, f"{upstream}/v1/messages", body, headers)
    assert status == 200 and len(raw) < SMALL_BYTES


async def _raw_exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()


async def test_oversized_heads_and_bodies_are_refused(upstream: str) -> None:
    port = int(upstream.rsplit(":", 1)[1])
    big_header = b"x-filler: " + b"a" * (caps.MAX_HEADER_BYTES + 1) + b"\r\n"
    answer = await _raw_exchange(
        port, b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + big_header + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 431 ")
    size = caps.MAX_BODY_BYTES + 1
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % size
    answer = await _raw_exchange(port, head + b"a" * size)
    assert answer.startswith(b"HTTP/1.1 413 ")


def _call(model: str) -> UpstreamCall:
    return UpstreamCall(
        upstream_model=model,
        deployment="mock/test",
        request_id="req_test",
        session=None,  # type: ignore[arg-type]  # the in-process mock makes no HTTP call
        timeouts=Timeouts(),
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_in_process_mock_refuses_huge_choice_counts(stream: bool) -> None:
    provider = MockProvider("mock", MockConfig(type="mock"))
    body = {"model": "m", "messages": HI, "n": 10**18, "stream": stream}
    req = ProviderRequest(Endpoint.CHAT, body, orjson.dumps(body), "m", stream)
    with pytest.raises(GatewayError) as info:
        if stream:
            await provider.open_stream(req, _call("chat"))
        else:
            await provider.send(req, _call("chat"))
    assert info.value.status == 400


def test_mock_upstream_exits_non_zero_when_its_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sluice", "mock-upstream", "--port", str(port)],
            capture_output=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
    assert b"mock upstream on" not in done.stdout


async def test_pipelined_requests_are_all_answered(upstream: str) -> None:
    """Reading pauses while answers are owed and resumes as they go out."""
    port = int(upstream.rsplit(":", 1)[1])
    count = caps.MAX_QUEUED_REQUESTS * 6
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n" * count)
        await writer.drain()
        seen = b""
        async with asyncio.timeout(20):
            while seen.count(b"HTTP/1.1 200 ") < count:
                chunk = await reader.read(65536)
                assert chunk, "the mock closed the connection"
                seen += chunk
    finally:
        writer.close()


async def test_an_endless_header_is_cut_off(upstream: str) -> None:
    """One header that never ends: the mock closes the connection instead of buffering it."""
    port = int(upstream.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    answer = b""
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-filler: ")
        piece = b"a" * 16384
        async with asyncio.timeout(20):
            while sent < 64 * 1024 * 1024:
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        pytest.fail("the mock accepted 64 MiB of one header")
    except ConnectionError:
        pass
    finally:
        try:
            answer = await asyncio.wait_for(reader.read(4096), 5)
        except ConnectionError:
            answer = b""
        writer.close()
    assert sent < 16 * 1024 * 1024
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
