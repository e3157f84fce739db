"""The dialect seam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from sluice.errors import GatewayError
from sluice.providers.base import UpstreamResponse, UpstreamStream
from sluice.types import Endpoint, ProviderRequest, Usage


class Translation(Protocol):
    """One request's mapping onto a provider that does not speak the client's format."""

    upstream: ProviderRequest
    """The request sent to the provider (an OpenAI chat request)."""
    warnings: tuple[str, ...]
    """What the translation left out (e.g. ``tool web_search``), sent to the client in the
    ``x-sluice-warning`` header; empty when nothing was."""

    async def response(self, resp: UpstreamResponse, usage: Usage) -> bytes:
        """The client's answer body from the provider's."""
        ...

    def stream(self, upstream: UpstreamStream) -> AsyncIterator[bytes]:
        """The client's SSE events from the provider's; ends with the format's own end."""
        ...


class Dialect(Protocol):
    endpoint: Endpoint
    """The capability that serves this format natively."""
    carries_metadata: bool
    """Answers are OpenAI-shaped and may carry the opt-in ``sluice`` metadata object."""
    stream_ends: tuple[bytes, ...]
    """Markers of the terminal event of a stream relayed as a piece (e.g. ``message_stop``):
    the request is settled before a piece holding one is sent. Empty when the terminal
    event is the stream's tail (:meth:`stream_tail`), which is always sent last."""

    def parse(self, raw: bytes) -> ProviderRequest:
        """Validate a body; raise ``BadRequest`` naming the field."""
        ...

    def plan(self, req: ProviderRequest, capabilities: frozenset[Endpoint]) -> Translation | None:
        """How to serve ``req`` on a provider with ``capabilities``: ``None`` to relay it
        natively and unchanged, else a translation; raise ``GatewayError`` if nothing fits."""
        ...

    def stream_tail(self, req: ProviderRequest, upstream: UpstreamStream) -> bytes:
        """Bytes that end a natively relayed stream (e.g. ``data: [DONE]``)."""
        ...

    def error(self, exc: GatewayError) -> bytes:
        """An error answer body in this format."""
        ...

    def stream_error(self, exc: GatewayError) -> bytes:
        """The terminal SSE event for a failure after the first byte."""
        ...
