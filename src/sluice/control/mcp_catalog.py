"""What the console shows of the MCP gateway: the servers a person may use, each server's
tools as the gateway's own tool runner lists them for that person (access applied), and, for
admins, how each server is doing.

Nothing here reveals how a server is reached: no upstream URL, header, command or
environment leaves this module, only the name, description, tags and transport.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sluice.auth.principal import MCP_ALL, Principal
from sluice.config.mcp import McpServerConfig
from sluice.errors import GatewayError
from sluice.mcp.health import ServerHealth

if TYPE_CHECKING:
    from sluice.mcp.tools import ToolRunner

log = logging.getLogger("sluice.mcp")

NO_HEALTH = ServerHealth(up=False, last_error=None, restarts=0)


class ServerDirectory(Protocol):
    """The registry's read side (``sluice.mcp.registry.Registry``)."""

    def servers(self) -> Mapping[str, McpServerConfig]:
        """Every server by name, the config's and the stored ones."""
        ...

    def health(self) -> Mapping[str, ServerHealth]:
        """Up, last error and restarts of every server."""
        ...


@dataclass(frozen=True, slots=True)
class CatalogServer:
    """A server as a person sees it on the MCP page."""

    name: str
    description: str
    tags: tuple[str, ...]
    transport: str
    usable: bool
    """Whether the person's own access allows it (``False`` only for admins, who see every
    server)."""


@dataclass(frozen=True, slots=True)
class ToolEntry:
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class ToolListing:
    """A server's tools, or why they could not be listed (``error``; ``tools`` is empty)."""

    server: str
    tools: tuple[ToolEntry, ...] = ()
    error: str | None = None


class McpCatalog:
    """Built once by the control plane over the process's registry and tool runner."""

    def __init__(self, registry: ServerDirectory, runner: Callable[[], ToolRunner]) -> None:
        """``runner`` builds the process's one tool runner, on first use (it loads the MCP
        SDK, which a gateway that never reaches an MCP server does without)."""
        self._registry = registry
        self._build = runner
        self._runner: ToolRunner | None = None

    @property
    def runner(self) -> ToolRunner:
        """The process's one tool runner (also behind ``/mcp`` and ``/v1/responses``)."""
        if self._runner is None:
            self._runner = self._build()
        return self._runner

    def servers(self, principal: Principal) -> list[CatalogServer]:
        """The servers ``principal`` may use, by name; an admin gets every server."""
        out = []
        for name, server in sorted(self._registry.servers().items()):
            usable = principal.mcp.may_use_server(name)
            if usable or principal.is_admin:
                out.append(_view(server, usable=usable))
        return out

    def server(self, principal: Principal, name: str) -> CatalogServer | None:
        """One server as :meth:`servers` shows it; ``None`` when unknown or not the
        principal's (the two look the same)."""
        return next((s for s in self.servers(principal) if s.name == name), None)

    async def tools(self, principal: Principal, name: str) -> ToolListing | None:
        """The tools of server ``name`` that ``principal`` may call, listed upstream now
        (within the server's ``timeout_s``). An admin outside the server's access sees the
        tools the server offers. ``None``: no such server for this principal. An upstream
        that is down or failing gives a listing with ``error`` set, never an exception."""
        shown = self.server(principal, name)
        if shown is None:
            return None
        asking = principal if shown.usable else dataclasses.replace(principal, mcp=MCP_ALL)
        from mcp.shared.exceptions import McpError

        try:
            tools = await self.runner.list_tools(asking, name)
        except McpError as exc:
            return ToolListing(name, error=exc.error.message)
        except GatewayError as exc:
            return ToolListing(name, error=exc.message)
        entries = tuple(ToolEntry(t.name, (t.description or "").strip()) for t in tools)
        return ToolListing(name, tools=tuple(sorted(entries, key=lambda t: t.name)))

    def health(self) -> Mapping[str, ServerHealth]:
        """Every server's health (admins only: the caller checks)."""
        known = self._registry.health()
        return {name: known.get(name, NO_HEALTH) for name in sorted(self._registry.servers())}


def _view(server: McpServerConfig, *, usable: bool) -> CatalogServer:
    return CatalogServer(
        name=server.name,
        description=server.description,
        tags=tuple(server.tags),
        transport=server.transport,
        usable=usable,
    )
