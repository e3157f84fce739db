"""Which upstream MCP URLs Sluice connects to (the rules; ``sluice.mcp.urls`` applies them
again when connecting).

A server's URL must be ``http`` or ``https`` with a host. Unless the server sets
``allow_private: true``, a URL must not reach a link-local address (``169.254.0.0/16``,
``fe80::/10``) or a cloud-metadata endpoint (``169.254.169.254``, ``fd00:ec2::254``,
``metadata.google.internal``): checked on the literal URL when the config is read or the
admin API stores it, and again on every address the host name resolves to when Sluice
connects (a name that later resolves elsewhere is caught then).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


class RefusedUrl(ValueError):
    """A URL Sluice will not connect to; the message says why (never a credential)."""


def refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is refused without ``allow_private`` (``None``: it is allowed)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if any(address in net for net in _LINK_LOCAL):
        return f"{address} is a link-local address"
    return None


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL's host, or :class:`RefusedUrl` (bad scheme, no host, or a refused literal
    address or metadata host name)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        raise RefusedUrl(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl(f"scheme must be http or https, not {parts.scheme or 'none'!r}")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise RefusedUrl("the URL has no host")
    if allow_private:
        return host
    if host in METADATA_HOSTS:
        raise RefusedUrl(f"{host} is a cloud metadata host (set allow_private to allow it)")
    address = literal_address(host)
    if address is not None:
        why = refused_address(address)
        if why is not None:
            raise RefusedUrl(f"{why} (set allow_private to allow it)")
    return host
