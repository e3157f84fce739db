"""The MCP gateway: the server registry, upstream transports, client-facing sessions bound to
the principal, access lists, and one usage row per tool call (docs/mcp.md)."""
