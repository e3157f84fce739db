"""Who is asking: the client address of an ASGI request, for per-address throttling.

The peer's address (ASGI ``scope["client"]``), unless the peer is one of the configured
trusted proxies: then ``X-Forwarded-For`` is read from the right, each trusted proxy's hop
skipped, and the first address that is not a trusted proxy is the client (the left-most
hop when all are trusted). A header from any other peer is ignored, so a client cannot
pick its own address. uvicorn's own proxy-header rewriting stays off (it costs every
request); this runs only when a bad key is counted or an address is being refused.

IPv6 clients are counted by their /64 network: one host usually holds a whole /64.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_HOPS = 32
"""``X-Forwarded-For`` hops examined at most, from the right."""
_MAX_CACHED = 4096
_UNKNOWN = "unknown"


class ClientAddresses:
    def __init__(self, trusted_proxies: tuple[Network, ...] = ()) -> None:
        self._trusted = trusted_proxies
        self._trusted_cache: dict[str, bool] = {}

    def of(self, scope: Mapping[str, Any]) -> str:
        """The client's address (an IPv6 client's /64) as a bucket name."""
        client = scope.get("client")
        peer = str(client[0]) if client else _UNKNOWN
        if not self._trusted or not self._is_trusted(peer):
            return _bucket(peer)
        hops = _forwarded_hops(scope)
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return _bucket(hop)
        return _bucket(hops[0] if hops else peer)

    def _is_trusted(self, address: str) -> bool:
        cache = self._trusted_cache
        known = cache.get(address)
        if known is None:
            if len(cache) >= _MAX_CACHED:
                cache.clear()
            ip = _ip(address)
            known = cache[address] = ip is not None and any(ip in net for net in self._trusted)
        return known


def _forwarded_hops(scope: Mapping[str, Any]) -> list[str]:
    values = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
    if not values:
        return []
    hops = b",".join(values).decode("latin-1").split(",")[-_MAX_HOPS:]
    return [hop.strip() for hop in hops if hop.strip()]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _bucket(address: str) -> str:
    ip = _ip(address)
    if ip is None:
        return address[:64] or _UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
