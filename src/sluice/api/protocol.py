"""The HTTP/1.1 edge: uvicorn's httptools protocol with bounded request heads.

uvicorn's httptools protocol accepts any number of header fields of any size and waits for a
request head as long as the client likes, so one slow or oversized head holds memory and a
connection for ever (slowloris). This subclass adds, per connection:

- a size limit on the request head (request line and header fields together): a longer one
  is answered ``431`` (``414`` when the URL alone is over) and the connection is closed;
  an incomplete head is refused as soon as its reads pass the limit, so a slow endless
  header holds no more than the limit and one read;
- a limit on the number of header fields (``431``), checked when the head is complete;
- a deadline for a complete head: counted from the connection's opening for its first
  request and from the first read of each later one (the idle time between requests on a
  kept-alive connection is uvicorn's keep-alive timeout). A head not complete in time gets
  ``408`` (or nothing, when no byte came) and the connection is closed.

The deadline is one timer per connection that re-arms itself, not a timer per request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger("sluice.edge")


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """Bounds on a request head (``SLUICE_MAX_HEADER_BYTES``, ``SLUICE_MAX_HEADERS``,
    ``SLUICE_HEADER_TIMEOUT_S``)."""

    max_bytes: int
    """Request line plus header names and values (4 bytes of framing counted per field)."""
    max_fields: int
    """Header fields per request."""
    timeout_s: float
    """Seconds a request head may take to arrive."""


def protocol_factory(limits: HeadLimits) -> type[asyncio.Protocol]:
    """What ``uvicorn.run(http=...)`` takes: the protocol class bound to ``limits``. A partial
    of a module-level class, so it pickles into ``--workers`` processes."""
    # uvicorn calls the class with keywords only, which the partial accepts.
    return cast("type[asyncio.Protocol]", functools.partial(EdgeProtocol, limits=limits))


_FIELD_FRAMING = 4
"""``": "`` and ``CRLF`` around each header field."""


class _HeadRefused(Exception):
    """Raised in a parser callback to stop parsing a head that broke a limit."""


class EdgeProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HeadLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits
        self.url = b""  # uvicorn sets it when a message begins; a refusal may come before
        self._head_since: float | None = None
        """When the wait for the current head started; ``None`` while none is awaited (a
        request is in flight, or the connection idles under uvicorn's keep-alive timer)."""
        self._head_bytes = 0
        """Bytes received in earlier reads while the head was awaited."""
        self._read_bytes = 0
        """Bytes of the read being parsed."""
        self._refusal = 0
        """The status a parser callback refused the head with."""
        self._timer: asyncio.TimerHandle | None = None

    # connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_since = self.loop.time()
        self._timer = self.loop.call_later(self._limits.timeout_s, self._check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    # Per request this adds one callback, a clock read and a few attribute tests. The header
    # fields are not counted one by one (a Python call per field costs ~0.5 us): the reads
    # of an incomplete head are, and a complete head's exact size is summed only when its
    # reads add up to more than the limit.
    def data_received(self, data: bytes) -> None:
        # uvicorn's own handling, plus the head's deadline, its count and the refusals.
        self._unset_keepalive_if_required()
        self._read_bytes = len(data)
        cycle = self.cycle
        if self._head_since is None and (cycle is None or not cycle.more_body):
            # No request body is being read, so these bytes begin a head (or are blank lines,
            # which the parser skips and which stopped the keep-alive timer all the same).
            # A body still arriving after its answer was sent (a 413, say) is no head.
            self._head_since = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal:
                self._refuse(self._refusal)
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._head_since is not None:
            # The head is still incomplete: the parser holds what it has not delivered yet
            # (a header trickling in), so its reads are counted against the limit.
            self._head_bytes += self._read_bytes
            if self._head_bytes > self._limits.max_bytes:
                self._refuse(self._too_large())

    def on_headers_complete(self) -> None:
        limits = self._limits
        if len(self.headers) > limits.max_fields or (
            self._head_bytes + self._read_bytes > limits.max_bytes
            and self._head_size() > limits.max_bytes
        ):
            self._refusal = self._too_large()
            raise _HeadRefused
        self._head_since = None
        self._head_bytes = 0
        super().on_headers_complete()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(n) + len(v) + _FIELD_FRAMING for n, v in self.headers)

    def _too_large(self) -> int:
        return 414 if len(self.url) > self._limits.max_bytes else 431

    # refusals ------------------------------------------------------------------------------
    def _check_head(self) -> None:
        """The connection's timer: closes it when the awaited head is late, else re-arms
        for the rest of the head's time (or a full period while no head is awaited)."""
        since = self._head_since
        now = self.loop.time()
        timeout_s = self._limits.timeout_s
        if since is not None and now - since >= timeout_s:
            self._timer = None
            if self._head_bytes:  # part of a head came
                self._refuse(408)
            else:
                self.transport.close()
            return
        delay = timeout_s if since is None else since + timeout_s - now
        self._timer = self.loop.call_later(delay, self._check_head)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` and close. When an earlier request on this connection is still
        being answered (pipelining), close without answering: the two would interleave."""
        self._head_since = None
        if self.transport.is_closing():
            return
        log.debug("request head refused with %d (client %s)", status, self.client)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_refusal(status))
        self.transport.close()


_REASONS = {
    408: b"the request head did not arrive in time",
    414: b"the request URL is longer than the gateway accepts",
    431: b"the request header fields are larger or more numerous than the gateway accepts",
}


def _refusal(status: int) -> bytes:
    body = _REASONS[status] + b"\n"
    return b"".join(
        (
            STATUS_LINE[status],
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )
