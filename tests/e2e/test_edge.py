"""The HTTP edge of a real ``sluice serve``, driven with raw sockets: oversized and slow
request heads are refused and their connections closed; ordinary requests, kept-alive
connections and ``--workers`` behave.

Waits are bounded (socket timeouts); no test asserts how long anything took.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import Gateway, start_gateway

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 4
MAX_HEADERS = 100
BOUND_S = 15.0
"""The longest any test waits for the server to act."""


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, mock_port: int, down_port: int, echo_port: int
) -> Iterator[Gateway]:
    gw = start_gateway(
        tmp_path_factory.mktemp("edge"),
        mock_port,
        down_port,
        echo_port,
        SLUICE_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        SLUICE_KEEP_ALIVE_TIMEOUT_S=str(KEEP_ALIVE_S),
        SLUICE_MAX_HEADERS=str(MAX_HEADERS),
    )
    try:
        yield gw
    finally:
        if gw.proc.alive():
            stop_gateway(gw)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND_S)
    sock.settimeout(BOUND_S)
    return sock


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout, i.e.
    a server that keeps the connection open, fails the test)."""
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data


def _head(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: gw", *headers, "", ""]
    return "\r\n".join(lines).encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response with a ``content-length`` on a connection that stays open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a full head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return _status(head), body


def test_too_many_header_fields_get_431_and_a_close(edge: Gateway) -> None:
    fields = [f"X-Field-{i}: {i}" for i in range(200)]
    with _connect(edge.port) as sock:
        sock.sendall(_head("/health/live", *fields))
        answer = _until_closed(sock)
    assert _status(answer) == 431
    assert b"connection: close" in answer.lower()


def test_one_huge_header_gets_431_and_a_close(edge: Gateway) -> None:
    with _connect(edge.port) as sock:
        try:
            sock.sendall(_head("/health/live", "X-Big: " + "a" * 100_000))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse before the last byte is sent
        answer = _until_closed(sock)
    assert _status(answer) == 431


def test_a_huge_url_gets_414(edge: Gateway) -> None:
    with _connect(edge.port) as sock:
        try:
            sock.sendall(_head("/health/live?q=" + "a" * 100_000))
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _until_closed(sock)
    assert _status(answer) == 414


def test_a_head_that_stops_halfway_is_closed(edge: Gateway) -> None:
    with _connect(edge.port) as sock:
        sock.sendall(b"POST /v1/chat/completions HTT")
        answer = _until_closed(sock)
    assert answer == b"" or _status(answer) == 408


def test_a_connection_that_sends_nothing_is_closed(edge: Gateway) -> None:
    with _connect(edge.port) as sock:
        assert _until_closed(sock) == b""


def test_a_head_trickling_in_is_closed_although_bytes_keep_coming(edge: Gateway) -> None:
    """Slowloris: a new header byte every 0.1 s never completes the head; the server
    closes the connection whatever the trickle (bounded: the test gives up after
    ``BOUND_S``)."""
    with _connect(edge.port) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: gw\r\n")
        sock.settimeout(0.1)
        deadline = time.monotonic() + BOUND_S
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b"x")
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed, "the server kept a trickling head open"


def test_ordinary_requests_still_work_at_the_limits(edge: Gateway) -> None:
    fields = [f"X-Field-{i}: {i}" for i in range(MAX_HEADERS - 2)]  # with Host and the key
    big = "X-Big: " + "b" * 30_000
    with _connect(edge.port) as sock:
        sock.sendall(_head("/v1/models", f"Authorization: Bearer {edge.key}", *fields))
        status, body = _read_response(sock)
        assert status == 200, body
        sock.sendall(_head("/v1/models", f"Authorization: Bearer {edge.key}", big))
        status, body = _read_response(sock)
        assert status == 200, body
        assert b"m-chat" in body


def test_a_kept_alive_connection_may_idle_longer_than_the_header_timeout(
    edge: Gateway,
) -> None:
    """Between requests the keep-alive timeout applies (here 4 s), not the head's (1 s);
    after it the server closes the idle connection."""
    with _connect(edge.port) as sock:
        sock.sendall(_head("/health/live"))
        assert _read_response(sock)[0] == 200
        sock.settimeout(2 * HEADER_TIMEOUT_S)
        with pytest.raises(TimeoutError):  # idle, and still open
            sock.recv(1)
        sock.settimeout(BOUND_S)
        sock.sendall(_head("/health/live"))
        assert _read_response(sock)[0] == 200
        assert _until_closed(sock) == b""


def test_workers_use_the_bounded_protocol(
    tmp_path: Path, mock_port: int, down_port: int, echo_port: int
) -> None:
    gw = start_gateway(
        tmp_path, mock_port, down_port, echo_port, SLUICE_MAX_HEADERS="20", workers=2
    )
    try:
        for _ in range(4):  # new connections, spread over the workers
            with _connect(gw.port) as sock:
                sock.sendall(_head("/health/live", *[f"X-F-{i}: {i}" for i in range(30)]))
                assert _status(_until_closed(sock)) == 431
            with _connect(gw.port) as sock:
                sock.sendall(_head("/health/live", "Connection: close"))
                assert _status(_until_closed(sock)) == 200
    finally:
        stop_gateway(gw)
