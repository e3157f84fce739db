"""The usage row of an MCP call or session start, built in one place for every MCP path."""

from __future__ import annotations

from sluice.auth.principal import Principal
from sluice.usage.event import UsageEvent


def mcp_row(
    principal: Principal,
    endpoint: str,
    *,
    request_id: str,
    created_at: float,
    server: str | None,
    tool: str | None = None,
    bytes_in: int = 0,
) -> UsageEvent:
    """A row for ``endpoint`` (``mcp.tool`` or ``mcp.session``) owned as ``principal`` is;
    the caller fills in how it ended (status, latency, bytes out, JSON-RPC error)."""
    return UsageEvent(
        request_id=request_id,
        created_at=created_at,
        endpoint=endpoint,
        key_id=principal.key_id,
        model=None,
        user_id=principal.user_id,
        team_id=principal.team_id,
        org_id=principal.org_id,
        mcp_server=server,
        mcp_tool=tool,
        bytes_in=bytes_in,
    )
