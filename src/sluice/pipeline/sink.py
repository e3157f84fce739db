"""Where the pipeline writes its answer; the HTTP edge implements it over ASGI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

Headers = list[tuple[bytes, bytes]]


class ResponseSink(Protocol):
    started: bool
    """Response headers have gone to the client; errors must now travel in-band."""

    before_last: Callable[[], Awaitable[None]] | None
    """Awaited once, before the last bytes of the answer are sent (by :meth:`json` and
    :meth:`end`), then cleared. The pipeline settles limits and budgets there, so a client
    that sends its next request the moment this answer ends finds its slot free."""

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        """Send a complete JSON answer (after awaiting :attr:`before_last`)."""
        ...

    async def start_stream(self, headers: Headers) -> None:
        """Send 200 and event-stream headers."""
        ...

    async def chunk(self, data: bytes) -> None: ...

    async def settle(self) -> None:
        """Await :attr:`before_last` now (once), before a stream's terminal event that is
        not its last bytes."""
        ...

    async def end(self, data: bytes = b"") -> None:
        """Await :attr:`before_last`, then send the last bytes and finish the response."""
        ...
