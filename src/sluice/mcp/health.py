"""How each upstream MCP server is doing: up, last error, restarts.

Free of the MCP SDK (the registry holds these from start-up, whether or not a server is ever
reached); what records a session's outcome on them is :mod:`sluice.mcp.tracked`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerHealth:
    up: bool
    """stdio: the process is running and initialised; http: the last connect or request
    got an answer."""
    last_error: str | None
    """The latest failure (with the last stderr line of a stdio server), never cleared by a
    later success, so an admin sees why it went down."""
    restarts: int
    """How many times a ``share: true`` stdio server was started again after it ended."""


class HealthState:
    """The mutable record behind :class:`ServerHealth` (one per server, this process)."""

    __slots__ = ("last_error", "restarts", "up")

    def __init__(self) -> None:
        self.up = False
        self.last_error: str | None = None
        self.restarts = 0

    def ok(self) -> None:
        self.up = True

    def failed(self, reason: str) -> None:
        self.up = False
        self.last_error = reason

    def view(self) -> ServerHealth:
        return ServerHealth(self.up, self.last_error, self.restarts)
