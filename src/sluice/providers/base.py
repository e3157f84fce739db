"""The provider seam.

An adapter turns an OpenAI-shaped :class:`~sluice.types.ProviderRequest` into one upstream
call and the answer back into OpenAI shape. It declares the endpoints it supports in
``capabilities``; the pipeline never calls a method for an undeclared capability.

Errors: adapters raise :class:`~sluice.errors.GatewayError` subclasses only, classified by
HTTP status or transport failure (``raise UpstreamError(...) from exc``), never by message.
Adapters never retry; the router decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sluice.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENT_BYTES
from sluice.types import Endpoint, ProviderRequest, Usage

if TYPE_CHECKING:
    import aiohttp

    from sluice.config.providers import Timeouts


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds on what is read from an upstream answer (``SLUICE_MAX_UPSTREAM_*``).

    Past either bound the answer is refused as ``provider_bad_response`` (502, or a terminal
    event in a stream) and the connection is dropped: memory stays bounded whatever the
    provider sends. A stream as a whole is not bounded, each of its events is.
    """

    body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest non-streamed answer body."""
    event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    """Largest single stream event (an SSE event, an event-stream frame)."""


@dataclass(slots=True)
class UpstreamCall:
    """Everything one upstream attempt needs besides the request itself."""

    upstream_model: str
    """The model name the provider knows (the deployment's ``model``)."""
    deployment: str
    """The deployment's stable key, for errors and usage rows."""
    request_id: str
    session: aiohttp.ClientSession
    """The process's shared keep-alive session; adapters never close it."""
    timeouts: Timeouts
    extra_headers: dict[str, str] = field(default_factory=dict)
    """Headers to propagate upstream (e.g. ``traceparent``); never the caller's key."""
    credential: str | None = None
    """The provider's API key for this call, resolved by the core: the credential stored
    through the admin API, else the config's ``api_key`` value; ``None`` when neither is set.
    Adapters never resolve ``api_key`` themselves."""
    limits: ReadLimits = field(default_factory=ReadLimits)
    """How much of the answer may be read (bodies and stream events)."""


@dataclass(slots=True)
class UpstreamResponse:
    """A complete non-streaming answer: an OpenAI-shaped JSON body (or the media of
    ``content_type``) and its usage."""

    body: bytes
    usage: Usage | None
    """The provider's own counts; ``None`` when it sent none (the pipeline estimates)."""
    completion_chars: int = 0
    """Characters of generated text, for the estimate when ``usage`` is ``None``."""
    content_type: str | None = None
    """The answer's media type when it is not a JSON object (speech audio, a transcript
    as text, SRT or WebVTT): relayed as is, without the gateway's metadata."""


class UpstreamStream(Protocol):
    """An open streaming answer, relayed as OpenAI ``chat.completion.chunk`` SSE events.

    Iterating yields SSE-framed bytes (``data: {...}\\n\\n``, one or more events per item)
    ready for the client. It never yields ``data: [DONE]``: the pipeline writes the end.
    Iteration stops normally only when the upstream finished cleanly; an interrupted,
    stalled or malformed stream raises a ``GatewayError``. The provider's final usage chunk
    is dropped unless the request's ``include_usage`` is set.

    The pipeline always calls :meth:`aclose`, which releases the upstream connection.
    """

    usage: Usage | None
    """The provider's counts once it sent them."""
    completion_chars: int
    """Characters of generated text relayed so far (content and tool-call arguments)."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    """One configured upstream account. Built once per process by the registry."""

    capabilities: frozenset[Endpoint]

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        """Run a non-streaming call for any declared capability."""
        ...

    async def open_stream(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamStream:
        """Start a streaming call (chat or completions) and return once the upstream
        accepted it (response headers received); upstream error statuses raise here."""
        ...


@runtime_checkable
class FileInput(Protocol):
    """An optional capability: the adapter carries documents in chat (OpenAI ``file``
    parts) to its upstream in a native form (e.g. a Messages ``document`` block)."""

    native_file_types: frozenset[str]
    """Media types the upstream takes as files by default; a deployment's ``file_types``
    overrides it. Documents of other types reach the adapter as text parts."""
