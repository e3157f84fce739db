"""The thin HTTP I/O every native adapter shares.

One POST with the call's deadlines (connect, time to first byte, idle between reads); an
upstream error answer translated by status through the provider's :class:`ErrorMap`; a
streamed answer relayed through a pure :class:`Translator`. The total deadline is the
pipeline's (``asyncio.timeout(total_s)`` around the whole attempt).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import aiohttp
import orjson
import yarl

from sluice.config.providers import ProviderConfig
from sluice.errors import ErrorKind, GatewayError, UpstreamError, upstream_http_error
from sluice.providers.base import UpstreamCall
from sluice.providers.http import error_message, map_transport_error, parse_retry_after
from sluice.providers.reading import FrameCap, SSECap, read_capped, read_small
from sluice.types import Usage

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ErrorMap:
    """How one provider's error answers map onto the error tree, by HTTP status.

    Statuses not in ``overrides`` use the gateway-wide table (``errors.py``). ``retry_hint``
    reads a retry delay from the body when the provider sends none in ``Retry-After``.
    """

    overrides: Mapping[int, ErrorKind] = field(default_factory=dict)
    retry_hint: Callable[[Any], float | None] | None = None

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        message = error_message(body, status)
        retry = parse_retry_after(headers.get("Retry-After"))
        if retry is None and self.retry_hint is not None:
            try:
                retry = self.retry_hint(orjson.loads(body))
            except orjson.JSONDecodeError:
                retry = None
        return upstream_http_error(
            status, message, retry_after_s=retry, kind=self.overrides.get(status)
        )


def api_key(name: str, config: ProviderConfig, call: UpstreamCall) -> str:
    """The key for this call, resolved by the core (``call.credential``: a stored credential,
    else the config's ``api_key``); none is a 503 naming the reference, never the value."""
    key = call.credential
    if not key:
        ref = repr(config.api_key_ref) if config.api_key_ref else "api_key"
        raise GatewayError(
            ErrorKind.GATEWAY_UNAVAILABLE, f"provider {name!r} has no credential ({ref} is not set)"
        )
    return key


def client_timeout(call: UpstreamCall) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None, sock_connect=call.timeouts.connect_s, sock_read=call.timeouts.idle_s
    )


async def post(
    call: UpstreamCall,
    url: str | yarl.URL,
    *,
    data: bytes,
    headers: Mapping[str, str],
    errors: ErrorMap,
) -> aiohttp.ClientResponse:
    """POST and return the response once its headers arrived with a 2xx status.

    The caller owns the response and must release it. Error statuses raise here, with the
    connection already released.
    """
    try:
        async with asyncio.timeout(call.timeouts.ttfb_s):
            resp = await call.session.post(
                url, data=data, headers=dict(headers), timeout=client_timeout(call)
            )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise map_transport_error(exc, deployment=call.deployment, started=False) from exc
    if resp.status < 400:
        return resp
    try:
        body = await read_small(resp)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise map_transport_error(exc, deployment=call.deployment, started=False) from exc
    finally:
        resp.release()
    raise errors.error(resp.status, body, resp.headers)


async def read_body(resp: aiohttp.ClientResponse, call: UpstreamCall) -> bytes:
    """The whole body, at most ``call.limits.body_bytes``; releases the connection."""
    try:
        return await read_capped(resp, limit=call.limits.body_bytes, deployment=call.deployment)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise map_transport_error(exc, deployment=call.deployment, started=False) from exc
    finally:
        resp.release()


def parse_object(body: bytes, deployment: str) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise GatewayError(
            ErrorKind.PROVIDER_BAD_RESPONSE,
            f"deployment {deployment} answered with a body that is not JSON",
        ) from None
    if not isinstance(data, dict):
        raise GatewayError(
            ErrorKind.PROVIDER_BAD_RESPONSE,
            f"deployment {deployment} answered with an unexpected body",
        )
    return data


async def read_json(resp: aiohttp.ClientResponse, call: UpstreamCall) -> dict[str, Any]:
    return parse_object(await read_body(resp, call), call.deployment)


def expect_content_type(resp: aiohttp.ClientResponse, prefix: str, deployment: str) -> None:
    """Refuse (and release) a streamed answer of the wrong type, e.g. a JSON error page."""
    if not resp.headers.get("Content-Type", "").startswith(prefix):
        resp.release()
        raise GatewayError(
            ErrorKind.PROVIDER_BAD_RESPONSE,
            f"deployment {deployment} did not answer with a stream ({prefix})",
        )


class Translator(Protocol):
    """Turns a provider's stream bytes into the client's events. Pure: no I/O.

    Raises ``GatewayError`` on a malformed event or an error event from the provider.
    """

    @property
    def usage(self) -> Usage | None:
        """The provider's counts once it sent them."""
        ...

    @property
    def completion_chars(self) -> int:
        """Characters of generated text relayed so far."""
        ...

    @property
    def done(self) -> bool:
        """The provider sent its terminal event; nothing more needs reading."""
        ...

    def feed(self, data: bytes) -> bytes:
        """Events to relay for these bytes (possibly none)."""
        ...

    def close(self) -> bytes:
        """The upstream body ended: the last events to relay (e.g. the usage chunk), or
        ``provider_stream_interrupted`` when the provider had not finished."""
        ...


class EventsBeforeFault(Exception):
    """Raised by a translator's ``feed`` when an event fails after others of the same read
    were translated: the stream relays ``delivered`` first, then fails with ``error``."""

    def __init__(self, delivered: bytes, error: GatewayError) -> None:
        super().__init__(error.message)
        self.delivered = delivered
        self.error = error


def translate_each(items: Iterable[T], one: Callable[[T], bytes]) -> bytes:
    """``one`` over each event of a read, joined; a failing event keeps the output of the
    events before it (:class:`EventsBeforeFault`)."""
    out: list[bytes] = []
    try:
        for item in items:
            out.append(one(item))
    except GatewayError as exc:
        if any(out):
            raise EventsBeforeFault(b"".join(out), exc) from None
        raise
    return b"".join(out)


class TranslatedStream:
    """An :class:`~sluice.providers.base.UpstreamStream` over one response and a translator.

    ``frames``: ``sse`` (events end at a blank line) or ``eventstream`` (AWS binary frames),
    for the per-event size cap."""

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        call: UpstreamCall,
        translator: Translator,
        *,
        frames: Literal["sse", "eventstream"] = "sse",
    ):
        self._resp = resp
        self._deployment = call.deployment
        self._translator = translator
        cap = FrameCap if frames == "eventstream" else SSECap
        self._cap = cap(call.limits.event_bytes, call.deployment)

    @property
    def usage(self) -> Usage | None:
        return self._translator.usage

    @property
    def completion_chars(self) -> int:
        return self._translator.completion_chars

    async def __aiter__(self) -> AsyncIterator[bytes]:
        translator = self._translator
        check = self._cap.check
        try:
            async for data in self._resp.content.iter_any():
                check(data)
                try:
                    out = translator.feed(data)
                except EventsBeforeFault as fault:
                    yield fault.delivered
                    raise fault.error from None
                if out:
                    yield out
                if translator.done:
                    break
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, deployment=self._deployment, started=True) from exc
        tail = translator.close()
        if tail:
            yield tail

    async def aclose(self) -> None:
        self._resp.release()


def interrupted(what: str = "the provider") -> GatewayError:
    return UpstreamError(
        ErrorKind.PROVIDER_STREAM_INTERRUPTED, f"{what} ended the stream without finishing it"
    )


def malformed(what: str = "stream event") -> GatewayError:
    return GatewayError(ErrorKind.PROVIDER_BAD_RESPONSE, f"the provider sent a malformed {what}")


def event_object(data: bytes) -> dict[str, Any]:
    """One event's JSON payload, which must be an object."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed() from None
    if not isinstance(obj, dict):
        raise malformed()
    return obj
