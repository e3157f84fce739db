"""Where the pipeline writes its answer; the HTTP edge implements it over ASGI."""

from __future__ import annotations

from typing import Protocol

from sluice.errors import GatewayError

Headers = list[tuple[bytes, bytes]]


class Cut(bytes):
    """The end of a stream that must not look complete: a binary stream (speech audio) that
    failed after its first bytes, which no in-band error event can mark. A sink over a
    connection drops it unfinished (the client sees a broken body); any other sink treats it
    as the end."""


class ResponseSink(Protocol):
    started: bool
    """Response headers have gone to the client; errors must now travel in-band."""

    ended: bool
    """The answer's last bytes have gone."""

    gone: bool
    """The client went away (set by whoever watches the connection): nothing reaches it
    any more, and a cancelled request was cancelled for that reason."""

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        """Send a complete JSON answer."""
        ...

    async def error(self, exc: GatewayError, body: bytes, headers: Headers) -> None:
        """Send an error answer (nothing was sent before): ``exc``'s status and its headers
        (``Retry-After``, a refusal's own) after ``headers``; ``body`` in the client's
        format."""
        ...

    async def start_stream(self, headers: Headers) -> None:
        """Send 200 and event-stream headers (``headers``' own ``content-type`` instead, when
        they have one: a binary stream)."""
        ...

    async def chunk(self, data: bytes) -> None: ...

    async def end(self, data: bytes = b"") -> None:
        """Send the last bytes and finish the response."""
        ...
