"""Transport helpers shared by HTTP adapters: error mapping at the boundary."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from sluice.errors import ErrorKind, GatewayError, UpstreamError, upstream_http_error
from sluice.providers.base import UpstreamCall
from sluice.providers.reading import read_small


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_message(body: bytes, status: int) -> str:
    """The provider's own message from an error body, whatever its envelope."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return text[:500] or f"the provider answered HTTP {status}"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail")
            if isinstance(message, str) and message:
                return message
        elif isinstance(error, str) and error:
            return error
        detail = data.get("detail") or data.get("message")
        if isinstance(detail, str) and detail:
            return detail
    return f"the provider answered HTTP {status}"


def error_code(body: bytes) -> str | None:
    """The provider's structured error code (``error.code``), if any."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


async def raise_for_upstream_status(resp: aiohttp.ClientResponse) -> None:
    """Translate an upstream error answer into our tree; return for 2xx."""
    if resp.status < 400:
        return
    body = await read_small(resp)
    raise upstream_http_error(
        resp.status,
        error_message(body, resp.status),
        retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
        code=error_code(body),
    )


def map_transport_error(exc: BaseException, *, deployment: str, started: bool) -> GatewayError:
    """Classify a transport failure; ``started``: response bytes were already relayed."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamError(ErrorKind.PROVIDER_TIMEOUT, f"deployment {deployment} timed out")
    if started:
        return UpstreamError(
            ErrorKind.PROVIDER_STREAM_INTERRUPTED,
            f"the connection to deployment {deployment} broke mid-answer",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(
            ErrorKind.PROVIDER_UNREACHABLE, f"cannot connect to deployment {deployment}"
        )
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamError(
            ErrorKind.PROVIDER_UNREACHABLE,
            f"deployment {deployment} closed the connection before answering",
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamError(
            ErrorKind.PROVIDER_UNREACHABLE, f"deployment {deployment} is unreachable"
        )
    raise exc


@contextlib.asynccontextmanager
async def credential_deadline(call: UpstreamCall, *, what: str) -> AsyncIterator[None]:
    """Bound a credential fetch (an OAuth token, a cloud credential chain) by the call's
    time-to-first-byte deadline, and translate what its network wait may raise: a timeout is
    ``provider_timeout`` (504), a transport failure ``provider_unreachable`` (502). ``what``
    names the endpoint in the message. Errors of our tree pass through."""
    try:
        async with asyncio.timeout(call.timeouts.ttfb_s):
            yield
    except GatewayError:
        raise
    except TimeoutError as exc:
        raise UpstreamError(
            ErrorKind.PROVIDER_TIMEOUT,
            f"deployment {call.deployment}: {what} did not answer within "
            f"{call.timeouts.ttfb_s:g} s",
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(
            ErrorKind.PROVIDER_UNREACHABLE, f"deployment {call.deployment}: {what} is unreachable"
        ) from exc
