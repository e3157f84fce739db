"""External MCP servers: a ``/v1/responses`` ``mcp`` tool whose ``server_url`` is not one of
the gateway's servers, allowed by ``mcp.allow_external``.

Such a tool is a transient Streamable HTTP upstream of one request: connected when the
request lists its tools, closed when the request ends. Its URL passes the same rules as a
configured server's (``sluice.config.mcp_urls``: no link-local or metadata address, checked
on the literal URL and again on the resolved addresses). The ``headers`` the caller sends
with the tool go to that URL only, literally (never read as ``env:`` references), bounded in
number and size.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from sluice.config.mcp import McpServerConfig
from sluice.config.mcp_urls import RefusedUrl, check_url
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.mcp.urls import check_connect

log = logging.getLogger("sluice.mcp")

MAX_HEADERS = 16
"""The most headers one ``mcp`` tool may send to its external server."""
MAX_HEADER_BYTES = 8192
"""The most bytes of names and values, all headers of one tool together."""
RESERVED_HEADERS = frozenset(
    {
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "mcp-protocol-version",
        "mcp-session-id",
        "te",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers the transport sets itself; a tool may not send them."""
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")


@dataclass(frozen=True, slots=True)
class ExternalServer:
    """One external server of a request."""

    label: str
    """The tool's ``server_label``: the server's name in items, access lists and usage rows."""
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def config(self, *, timeout_s: float) -> McpServerConfig:
        """The server as the tool runner sees it. Built without validation: the label is the
        caller's (OpenAI's labels are wider than config names) and the URL was checked by
        :func:`check_external_url`; it carries no headers (they stay here, literal)."""
        return McpServerConfig.model_construct(
            name=self.label, transport="streamable_http", url=self.url, timeout_s=timeout_s
        )


def check_external_url(url: str, where: str) -> None:
    """400 naming ``where`` for a URL no external server may have."""
    try:
        check_url(url, allow_private=False)
    except RefusedUrl as exc:
        raise BadRequest(f"'{where}' is refused: {exc}", param=where) from None


def check_headers(value: Any, where: str) -> dict[str, str]:
    """The ``headers`` of an external ``mcp`` tool, checked (400 naming the field)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"'{where}' must be an object of header names to values", param=where)
    if len(value) > MAX_HEADERS:
        raise BadRequest(f"'{where}' has more than {MAX_HEADERS} headers", param=where)
    size = 0
    for name, text in value.items():
        if not _TOKEN.match(name) or name.lower() in RESERVED_HEADERS:
            raise BadRequest(
                f"'{where}': {name[:64]!r} is not a header a tool may send", param=where
            )
        if not isinstance(text, str) or not _VALUE.match(text):
            raise BadRequest(
                f"'{where}.{name}' must be a string without control characters",
                param=f"{where}.{name}",
            )
        size += len(name) + len(text.encode())
    if size > MAX_HEADER_BYTES:
        raise BadRequest(f"'{where}' is over {MAX_HEADER_BYTES} bytes", param=where)
    return dict(value)


@contextlib.asynccontextmanager
async def open_external(
    server: ExternalServer, *, timeout_s: float, where: str
) -> AsyncIterator[ClientSession]:
    """An initialised session to ``server``, closed (the upstream session deleted) on exit.

    ``GatewayError``: 400 naming ``where``'s ``server_url`` when the host resolves to a refused
    address; 502 (504 past ``timeout_s``) naming its ``server_label`` when it cannot be
    reached or initialised."""
    try:
        await check_connect(server.url, allow_private=False, timeout_s=timeout_s)
    except RefusedUrl as exc:
        raise BadRequest(
            f"'{where}.server_url' is refused: {exc}", param=f"{where}.server_url"
        ) from None
    # The SDK's task groups wrap whatever crosses them in an ExceptionGroup: the caller's
    # own error (raised while the session is open) is raised again as it was, a failure
    # to connect becomes the gateway's, and one while closing after a success is logged.
    failure: BaseException | None = None
    opened = False
    try:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                create_mcp_http_client(
                    headers=dict(server.headers), timeout=httpx.Timeout(timeout_s)
                )
            )
            read, write, _ = await stack.enter_async_context(
                streamable_http_client(server.url, http_client=client)
            )
            session = await stack.enter_async_context(
                ClientSession(read, write, read_timeout_seconds=timedelta(seconds=timeout_s))
            )
            await session.initialize()
            opened = True
            try:
                yield session
            except BaseException as exc:
                failure = exc
                raise
    except Exception as exc:
        if failure is not None:
            raise failure from None
        if opened:
            log.info("mcp server %r (external): closing failed: %r", server.label, exc)
            return
        kind = (
            ErrorKind.PROVIDER_TIMEOUT
            if isinstance(exc, TimeoutError) or _has(exc, TimeoutError)
            else ErrorKind.PROVIDER_UNREACHABLE
        )
        raise GatewayError(
            kind,
            f"the MCP server {server.label!r} could not be reached ({_name(exc)})",
            param=f"{where}.server_label",
        ) from exc


def _has(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_has(e, kind) for e in exc.exceptions)
    return isinstance(exc, kind)


def _name(exc: BaseException) -> str:
    """The first real error's type name (inside the SDK's exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return type(exc).__name__
