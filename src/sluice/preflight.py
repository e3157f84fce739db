"""Checks made before ``sluice serve`` touches the database or prints the admin key.

A start that would fail on something known beforehand (a policy file that does not load,
a port already in use) fails here, with one line per problem and no traceback, before the
one-time admin key is generated: the next, corrected start still prints it.
"""

from __future__ import annotations

import errno
import socket

from sluice.config import GatewayConfig


def file_problems(config: GatewayConfig) -> list[str]:
    """Problems of the files the config names (routing policies), one line each."""
    if not config.routing.policies:
        return []
    from sluice.routing.policy.source import PolicyLoadError, load

    try:
        load(config.routing.policies)
    except PolicyLoadError as exc:
        return [str(p) for p in exc.problems]
    return []


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or ``None`` when it can (checked by binding
    and closing at once, with the address reuse the server itself uses)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"cannot listen on {host}:{port}: the port is in use (choose --port)"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None
