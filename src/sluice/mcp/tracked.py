"""What records an upstream session's outcome on its server's health
(:class:`~sluice.mcp.health.HealthState`), and a failure as one line for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from mcp import ClientSession
from mcp.shared.exceptions import McpError
from mcp.types import CONNECTION_CLOSED, ErrorData

from sluice.mcp.health import HealthState

if TYPE_CHECKING:
    from sluice.mcp.upstream import Watch

REQUEST_TIMEOUT = 408
"""The SDK's error code for a request past its deadline (``read_timeout_seconds``)."""


def describe(exc: BaseException | None, watch: Watch | None) -> str:
    """A failure as one line: the error (or how the process ended) and the last thing the
    process wrote on stderr."""
    parts: list[str] = []
    if exc is not None:
        inner = _first(exc)
        if isinstance(inner, McpError):
            parts.append(inner.error.message)
        else:
            parts.append(f"{type(inner).__name__}: {inner}" if str(inner) else type(inner).__name__)
    if watch is not None:
        if watch.end.reason is not None and exc is None:
            parts.append(watch.end.reason)
        last = watch.tail.last()
        if last:
            parts.append(f"stderr: {last}")
    return "; ".join(parts) or "unknown error"


def _first(exc: BaseException) -> BaseException:
    """The first error of a (nested) exception group: an SDK error when there is one."""
    while isinstance(exc, BaseExceptionGroup):
        inner = exc.exceptions
        exc = next((e for e in inner if isinstance(e, McpError)), inner[0])
    return exc


class TrackedSession(ClientSession):
    """A ``ClientSession`` that records every request's outcome on its server's health."""

    health: HealthState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drained = anyio.Event()
        """Set once the session stopped reading and answered every pending request with
        "Connection closed" (the SDK does that as its receive loop ends)."""

    async def _receive_loop(self) -> None:
        # A supervisor that tears the session down as soon as the process ended would cancel
        # this loop before it fails the pending requests, leaving them to their deadline.
        try:
            await super()._receive_loop()
        finally:
            self.drained.set()

    @classmethod
    def bound(cls, health: HealthState) -> type[TrackedSession]:
        return type("TrackedSession", (cls,), {"health": health})

    async def send_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await super().send_request(*args, **kwargs)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            # The transport's writer is gone (the process died before this request was
            # sent): the same answer as for the requests that were pending then.
            self.health.failed("Connection closed")
            raise McpError(ErrorData(code=CONNECTION_CLOSED, message="Connection closed")) from None
        except McpError as exc:
            if exc.error.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                self.health.failed(exc.error.message)
            raise
        self.health.ok()
        return result
