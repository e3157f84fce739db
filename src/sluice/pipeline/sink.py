"""Where the pipeline writes its answer; the HTTP edge implements it over ASGI."""

from __future__ import annotations

from typing import Protocol

Headers = list[tuple[bytes, bytes]]


class ResponseSink(Protocol):
    started: bool
    """Response headers have gone to the client; errors must now travel in-band."""

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        """Send a complete JSON answer."""
        ...

    async def start_stream(self, headers: Headers) -> None:
        """Send 200 and event-stream headers."""
        ...

    async def chunk(self, data: bytes) -> None: ...

    async def end(self, data: bytes = b"") -> None:
        """Send the last bytes and finish the response."""
        ...
