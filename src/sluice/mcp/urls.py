"""The connect-time half of the URL rules of ``sluice.config.mcp_urls``: every address an
upstream's host name resolves to is checked just before Sluice connects."""

from __future__ import annotations

import asyncio
import socket

from sluice.config.mcp_urls import RefusedUrl, check_url, literal_address, refused_address

__all__ = ["RefusedUrl", "check_connect"]


async def check_connect(url: str, *, allow_private: bool, timeout_s: float) -> None:
    """:func:`check_url`, then every address the host resolves to, before connecting.

    A host that does not resolve is left to the connection itself to report."""
    host = check_url(url, allow_private=allow_private)
    if allow_private or literal_address(host) is not None:
        return
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return
    for info in infos:
        address = literal_address(str(info[4][0]))
        why = refused_address(address) if address is not None else None
        if why is not None:
            raise RefusedUrl(f"{host} resolves to {why} (set allow_private to allow it)")
