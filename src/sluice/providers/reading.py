"""Bounded reads of upstream answers: whole bodies, error bodies and stream events.

Whatever a provider sends, a request holds at most one capped body (``ReadLimits.body_bytes``)
or one capped event (``ReadLimits.event_bytes``) in memory. Bodies are counted as they are
decoded, so a compressed answer cannot expand past the cap either. Past a cap the answer is
``provider_bad_response`` and the connection is closed, not returned to the pool half read.
"""

from __future__ import annotations

import aiohttp

from sluice.errors import ErrorKind, GatewayError

SMALL_BODY_BYTES = 64 * 1024
"""What is read of an answer that is small by nature (an error envelope, a token): enough for
any provider's; the rest is dropped (an error's message then falls back to the status)."""


def over_limit(deployment: str, what: str, limit: int, setting: str) -> GatewayError:
    return GatewayError(
        ErrorKind.PROVIDER_BAD_RESPONSE,
        f"deployment {deployment} sent {what} larger than the gateway's limit of "
        f"{limit} bytes ({setting})",
    )


async def read_capped(resp: aiohttp.ClientResponse, *, limit: int, deployment: str) -> bytes:
    """The whole body, refused past ``limit`` bytes (at once when ``Content-Length`` says
    so). Transport errors propagate as aiohttp's; the caller releases the response."""
    length = resp.content_length
    if length is not None and length > limit:
        resp.close()
        raise over_limit(deployment, "an answer", limit, "SLUICE_MAX_UPSTREAM_BODY_BYTES")
    if length is not None and "Content-Encoding" not in resp.headers:
        return await resp.read()  # its size is known and within the limit: read at once
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            resp.close()
            raise over_limit(deployment, "an answer", limit, "SLUICE_MAX_UPSTREAM_BODY_BYTES")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_small(resp: aiohttp.ClientResponse, limit: int = SMALL_BODY_BYTES) -> bytes:
    """At most ``limit`` bytes of a small answer (an error envelope, a token); a longer one
    is cut and its connection closed. The caller releases the response."""
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            resp.close()
            break
    return b"".join(parts)[:limit]


class SSECap:
    """Bounds the size of each server-sent event, fed every read of the stream.

    An event ends at a blank line (``\n\n``, or ``\r\n\r\n`` when the stream's first line
    break was CRLF). Every event completed in a read is measured, and the one still open across
    reads. Raises ``provider_bad_response`` for the first event over the limit.
    """

    __slots__ = ("_deployment", "_framed", "_limit", "_pending", "_sep", "_tail")

    def __init__(self, limit: int, deployment: str) -> None:
        self._limit = limit
        self._deployment = deployment
        self._pending = 0
        self._sep = b"\n\n"
        self._framed = False
        self._tail = b""

    def check(self, data: bytes) -> None:
        if not self._framed and b"\n" in data:  # the first line break says LF or CRLF
            self._framed = True
            if b"\r\n" in data or (data[:1] == b"\n" and self._tail == b"\r"):
                self._sep = b"\n\r\n"
        sep, limit = self._sep, self._limit
        k, n = len(sep), len(data)
        pending, pos = self._pending, 0
        if self._tail:
            j = (self._tail + data[: k - 1]).find(sep)
            if j >= 0:  # the blank line was split across two reads
                pending, pos = 0, max(0, j + k - len(self._tail))
        if pending + n - pos <= limit:
            # No event can be over the limit within this read: track the open one only.
            end = data.rfind(sep, pos)
            pending = n - end - k if end >= 0 else pending + n - pos
        else:
            while (end := data.find(sep, pos)) >= 0:
                if pending + end - pos > limit:
                    raise self._over()
                pending, pos = 0, end + k
            pending += n - pos
            # The open event's last bytes may be the start of its blank line: measured
            # exactly once the blank line arrives, so allow those few bytes here.
            if pending > limit + k - 1:
                raise self._over()
        self._pending = pending
        # The stream's last k - 1 bytes, however short this read was: a blank line may be
        # split over three reads.
        seen = self._tail + data if n < k else data  # (a short read only: no copy)
        self._tail = b"" if seen.endswith(sep) else seen[1 - k :]

    def _over(self) -> GatewayError:
        return over_limit(
            self._deployment, "a stream event", self._limit, "SLUICE_MAX_UPSTREAM_EVENT_BYTES"
        )


class FrameCap:
    """Bounds the frames of an AWS event stream (``application/vnd.amazon.eventstream``):
    each frame starts with its total length (4 bytes, big-endian), checked before the frame
    is buffered."""

    __slots__ = ("_deployment", "_head", "_limit", "_remaining")

    def __init__(self, limit: int, deployment: str) -> None:
        self._limit = limit
        self._deployment = deployment
        self._remaining = 0
        self._head = b""

    def check(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self._remaining:
                step = min(self._remaining, n - i)
                self._remaining -= step
                i += step
                continue
            take = 4 - len(self._head)
            self._head += data[i : i + take]
            i += take
            if len(self._head) < 4:
                return
            total = int.from_bytes(self._head, "big")
            self._head = b""
            if total > self._limit:
                raise over_limit(
                    self._deployment,
                    "a stream event",
                    self._limit,
                    "SLUICE_MAX_UPSTREAM_EVENT_BYTES",
                )
            self._remaining = max(0, total - 4)
