"""End-to-end fixtures: ``sluice mock-upstream`` and ``sluice serve`` as real processes.

One mock upstream and one gateway serve the whole session; tests that need a pristine usage
table (the burst) start their own gateway with :func:`tests.e2e.support.start_gateway`.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.support import Gateway, reserve_closed_port, start_gateway, start_mock_upstream

MAX_BODY_BYTES = 65536
"""The session gateway's body limit: small, so a 413 costs a 100 KB request, not 20 MB."""

_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def down_port() -> Iterator[int]:
    sock = reserve_closed_port()
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.fixture(scope="session")
def echo_sock() -> Iterator[socket.socket]:
    """A reserved port for a test's own recording upstream (see ``test_passthrough``); until a
    test listens on it, connects are refused."""
    sock = reserve_closed_port()
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture(scope="session")
def echo_port(echo_sock: socket.socket) -> int:
    return int(echo_sock.getsockname()[1])


@pytest.fixture(scope="session")
def mock_port(e2e_dir: Path) -> Iterator[int]:
    proc, port = start_mock_upstream(e2e_dir)
    try:
        yield port
    finally:
        proc.stop_hard()


def stop_gateway(gw: Gateway) -> None:
    """SIGTERM; the gateway must drain, run its lifespan shutdown and exit with status 0
    (anything else: a crash, death by the signal, SIGKILL, a hang, fails)."""
    code = gw.proc.terminate()
    log = gw.proc.log()
    assert code == 0, f"gateway exited {code} after SIGTERM:\n{log}"
    assert "Application shutdown complete" in log, log
    assert "Finished server process" in log, log
    assert not _TRACEBACK.search(log), f"the gateway logged a traceback:\n{log}"


@pytest.fixture(scope="session")
def gateway(e2e_dir: Path, mock_port: int, down_port: int, echo_port: int) -> Iterator[Gateway]:
    gw = start_gateway(
        e2e_dir / "main",
        mock_port,
        down_port,
        echo_port,
        SLUICE_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
    )
    try:
        yield gw
    finally:
        if gw.proc.alive():
            stop_gateway(gw)


@pytest.fixture
async def aclient(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK, no retries (every request is exactly one gateway request)."""
    async with openai.AsyncOpenAI(
        base_url=gateway.v1, api_key=gateway.key, max_retries=0, timeout=20.0
    ) as client:
        yield client


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP with the gateway key, for what the SDK hides (SSE bytes, headers)."""
    async with httpx.AsyncClient(
        base_url=gateway.base_url,
        headers={"Authorization": f"Bearer {gateway.key}"},
        timeout=20.0,
    ) as client:
        yield client
