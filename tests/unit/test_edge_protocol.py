"""The bounded HTTP protocol at its edges, over a fake transport: exact limits, heads split
over reads, bodies in the same read, the connection's head timer.

The end-to-end behaviour over real sockets is in ``tests/e2e/test_edge.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from sluice.api.protocol import EdgeProtocol, HeadLimits

LIMITS = HeadLimits(max_bytes=2048, max_fields=10, timeout_s=30.0)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        peers = {"sockname": ("127.0.0.1", 4000), "peername": ("127.0.0.1", 50000)}
        return peers.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Recorder:
    """The ASGI app: records each request's headers and answers 200."""

    def __init__(self) -> None:
        self.requests: list[list[tuple[bytes, bytes]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.requests.append(list(scope["headers"]))
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _protocol(
    app: Recorder, limits: HeadLimits = LIMITS
) -> tuple[EdgeProtocol, FakeTransport, ServerState]:
    config = Config(app=app, log_config=None, timeout_keep_alive=5)
    config.load()
    state = ServerState()
    protocol = EdgeProtocol(config=config, server_state=state, app_state={}, limits=limits)
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def _settle(state: ServerState) -> None:
    for _ in range(100):
        if not state.tasks:
            return
        await asyncio.sleep(0)
    raise AssertionError("the request tasks did not finish")


def _head(*fields: bytes, path: bytes = b"/x", body: bytes = b"") -> bytes:
    lines = [b"POST " + path + b" HTTP/1.1", b"host: gw", *fields]
    if body:
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join([*lines, b"", b""]) + body


def _sized(total: int) -> bytes:
    """A head whose counted size (URL, then name + value + 4 per field) is ``total``."""
    base = len(b"/x") + len(b"host") + len(b"gw") + 4
    filler = total - base - len(b"x-pad") - 4
    return _head(b"x-pad: " + b"p" * filler)


def _status(transport: FakeTransport) -> int:
    return int(transport.written.split(b" ", 2)[1])


async def test_a_head_at_the_size_limit_is_served_one_byte_more_is_not() -> None:
    app = Recorder()
    protocol, transport, state = _protocol(app)
    protocol.data_received(_sized(LIMITS.max_bytes))
    await _settle(state)
    assert len(app.requests) == 1
    assert _status(transport) == 200 and not transport.closed

    protocol, transport, state = _protocol(app)
    protocol.data_received(_sized(LIMITS.max_bytes + 1))
    await _settle(state)
    assert len(app.requests) == 1
    assert _status(transport) == 431 and transport.closed


async def test_the_field_count_limit() -> None:
    app = Recorder()
    fields = [b"x-%d: v" % i for i in range(LIMITS.max_fields - 1)]  # with host: at the limit
    protocol, transport, state = _protocol(app)
    protocol.data_received(_head(*fields))
    await _settle(state)
    assert _status(transport) == 200

    protocol, transport, state = _protocol(app)
    protocol.data_received(_head(*fields, b"x-last: v"))
    await _settle(state)
    assert len(app.requests) == 1
    assert _status(transport) == 431 and transport.closed


async def test_a_header_trickling_in_is_refused_before_it_ends() -> None:
    """A header that never ends is refused once its reads pass the limit: the parser holds
    no more than the limit and a read."""
    app = Recorder()
    protocol, transport, _ = _protocol(app)
    protocol.data_received(b"GET /x HTTP/1.1\r\nx-endless: ")
    sent = 0
    while not transport.closed and sent < 10 * LIMITS.max_bytes:
        protocol.data_received(b"a" * 100)
        sent += 100
    assert transport.closed and sent <= LIMITS.max_bytes + 100  # the limit and one read
    assert _status(transport) == 431
    assert app.requests == []


async def test_a_long_url_is_414() -> None:
    app = Recorder()
    protocol, transport, state = _protocol(app)
    protocol.data_received(_head(path=b"/x?" + b"q" * LIMITS.max_bytes))
    await _settle(state)
    assert _status(transport) == 414 and app.requests == []


async def test_a_large_body_in_the_head_s_read_is_not_counted() -> None:
    app = Recorder()
    protocol, transport, state = _protocol(app)
    protocol.data_received(_head(body=b"b" * 50 * LIMITS.max_bytes))
    await _settle(state)
    assert _status(transport) == 200 and len(app.requests) == 1


async def test_each_head_of_a_kept_alive_connection_is_counted_afresh() -> None:
    app = Recorder()
    protocol, transport, state = _protocol(app)
    for _ in range(5):
        head = _sized(LIMITS.max_bytes - 10)
        protocol.data_received(head[:1000])
        protocol.data_received(head[1000:])
        await _settle(state)
    assert len(app.requests) == 5 and not transport.closed


async def test_the_head_timer_closes_a_late_head_and_spares_a_served_one() -> None:
    """The timer's check run by hand (the real delays are exercised end to end)."""
    app = Recorder()
    protocol, transport, state = _protocol(app, HeadLimits(2048, 10, timeout_s=0.0))
    protocol.data_received(_head())
    await _settle(state)
    protocol._check_head()  # a served request: no head awaited, the timer re-arms
    assert not transport.closed
    protocol.data_received(b"GET /x HTTP/1.1\r\nho")
    protocol._check_head()
    assert transport.closed
    assert transport.written.endswith(b"the request head did not arrive in time\n")
    assert b" 408 " in transport.written
    protocol.connection_lost(None)


async def test_blank_lines_on_an_idle_connection_do_not_keep_it_open() -> None:
    """Bytes that begin no request (the parser skips CRLFs between requests) stop uvicorn's
    keep-alive timer; the head's deadline applies to them instead."""
    app = Recorder()
    protocol, transport, state = _protocol(app, HeadLimits(2048, 10, timeout_s=0.0))
    protocol.data_received(_head())
    await _settle(state)
    protocol.data_received(b"\r\n")
    protocol._check_head()
    assert transport.closed
    protocol.connection_lost(None)


async def test_a_connection_that_never_sends_is_closed_without_an_answer() -> None:
    protocol, transport, _ = _protocol(Recorder(), HeadLimits(2048, 10, timeout_s=0.0))
    protocol._check_head()
    assert transport.closed and transport.written == b""
    protocol.connection_lost(None)


async def test_malformed_requests_keep_uvicorn_s_400() -> None:
    protocol, transport, _ = _protocol(Recorder())
    protocol.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    assert _status(transport) == 400 and transport.closed
