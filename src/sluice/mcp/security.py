"""``Host`` and ``Origin`` checks on ``/mcp`` (DNS rebinding protection, docs/mcp.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def _match(value: str, allowed: tuple[str, ...]) -> bool:
    """``value`` equals an entry, or an entry ``base:*`` and ``value`` is ``base:<port>``."""
    for entry in allowed:
        if value == entry:
            return True
        if entry.endswith(":*"):
            base, _, port = value.rpartition(":")
            if base == entry[:-2] and port.isdigit():
                return True
    return False


def _loopback_patterns(prefix: str = "") -> tuple[str, ...]:
    return tuple(f"{prefix}{h}{suffix}" for h in LOOPBACK for suffix in ("", ":*"))


class HostOriginCheck:
    """Which ``Host`` and ``Origin`` header values ``/mcp`` accepts.

    ``hosts`` empty: the address the request came in on (the listening socket's, exact) and
    the loopback names on any port. ``origins`` empty: the request's own origin
    (``http(s)://{Host}``) and loopback origins on any port. A request without ``Origin``
    (not from a browser) passes the origin check."""

    def __init__(self, hosts: tuple[str, ...], origins: tuple[str, ...]) -> None:
        self._hosts = hosts
        self._origins = origins

    def host_ok(self, host: str | None, scope: Mapping[str, Any]) -> bool:
        if not host:
            return False
        host = host.lower()
        if self._hosts:
            return _match(host, self._hosts)
        server = scope.get("server")
        if server and server[0]:
            listen = f"[{server[0]}]" if ":" in server[0] else server[0]
            if host in (listen, f"{listen}:{server[1]}"):
                return True
        return _match(host, _loopback_patterns())

    def origin_ok(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True
        origin = origin.lower()
        if self._origins:
            return _match(origin, self._origins)
        if host and origin in (f"http://{host.lower()}", f"https://{host.lower()}"):
            return True
        return _match(origin, _loopback_patterns("http://") + _loopback_patterns("https://"))
