"""What the database keeps of the MCP servers admins manage through the admin API (the
config's servers are never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredMcpServer:
    name: str
    spec: dict[str, Any]
    """The server's fields as JSON (every field of ``McpServerConfig`` but ``name``); header
    and environment values are ``env:NAME`` references, never a secret."""
    created_at: float
    updated_at: float


class McpServerRepository(Protocol):
    """Every write bumps the key-change counter (every process reloads its servers) and joins
    the unit of work it is called on (``Unit.mcp_servers``)."""

    async def all(self) -> list[StoredMcpServer]:
        """Every stored server, by name."""
        ...

    async def get(self, name: str) -> StoredMcpServer | None: ...

    async def add(self, record: StoredMcpServer) -> None:
        """Insert a server; raises when one of that name is stored (the caller's 409)."""
        ...

    async def update(self, record: StoredMcpServer) -> bool:
        """Replace the spec and ``updated_at`` of ``record.name``; ``False`` when no server
        has that name."""
        ...

    async def delete(self, name: str) -> bool:
        """``False`` when no server has that name."""
        ...
