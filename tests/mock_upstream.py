"""``sluice mock-upstream`` in the test's own event loop, for in-process tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sluice.providers.mock.server import run_server
from tests.services import free_port


@contextlib.asynccontextmanager
async def mock_upstream() -> AsyncIterator[str]:
    """The mock upstream on a free loopback port; yields its base URL (no ``/v1``)."""
    port = free_port()
    ready = asyncio.Event()
    server = asyncio.ensure_future(run_server("127.0.0.1", port, ready=ready))
    await asyncio.wait_for(ready.wait(), 5)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
