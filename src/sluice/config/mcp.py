"""The MCP gateway's config: the upstream MCP servers and how clients reach them (docs/mcp.md)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from sluice.config.mcp_urls import RefusedUrl, check_url
from sluice.config.secrets import SecretRef

SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""A server's name: it is a path segment (``/mcp/{name}``) and a tool-name prefix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolFilter(_Frozen):
    """Which of a server's tools are offered: ``allow`` (when set) keeps only those, ``deny``
    removes. Entries are tool names; ``*`` matches any run of characters."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()


class McpServerConfig(_Frozen):
    """One upstream MCP server."""

    name: Annotated[str, Field(pattern=SERVER_NAME.pattern)]
    description: str = ""
    tags: tuple[str, ...] = ()
    transport: Literal["streamable_http", "sse", "stdio"]
    url: str | None = None
    """``streamable_http`` and ``sse``: the server's endpoint."""
    headers: dict[str, SecretRef] = Field(default_factory=dict)
    """Sent upstream on every request (``env:NAME`` references are read when sent)."""
    command: str | None = None
    """``stdio``: the program Sluice starts."""
    args: tuple[str, ...] = ()
    env: dict[str, SecretRef] = Field(default_factory=dict)
    """``stdio``: extra environment of the process."""
    cwd: str | None = None
    share: bool = False
    """``stdio``: one process serves every gateway session (for servers that keep no
    per-client state). Off: each gateway session gets its own process."""
    allow_private: bool = False
    """Allow a URL on a link-local or cloud-metadata address (refused otherwise)."""
    tools: ToolFilter = Field(default_factory=ToolFilter)
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """Deadline of one upstream request (a tool call included)."""

    @model_validator(mode="after")
    def _shape(self) -> McpServerConfig:
        if self.transport == "stdio":
            if not self.command:
                raise _wrong("command", f"mcp server {self.name!r}: stdio needs command")
            if self.url:
                raise _wrong("url", f"mcp server {self.name!r}: stdio takes no url")
        else:
            if not self.url:
                raise _wrong("url", f"mcp server {self.name!r}: {self.transport} needs url")
            if self.command:
                raise _wrong(
                    "command", f"mcp server {self.name!r}: {self.transport} takes no command"
                )
            try:
                check_url(self.url, allow_private=self.allow_private)
            except RefusedUrl as exc:
                raise _wrong("url", f"mcp server {self.name!r}: url: {exc}") from None
        return self


SHAPE_ERROR = "mcp_server_shape"
"""The pydantic error type of a server whose fields do not fit together; its ``ctx`` names
the field to blame (``field``), for the admin API's 400."""


def _wrong(field: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(SHAPE_ERROR, "{message}", {"message": message, "field": field})


class McpConfig(_Frozen):
    """``mcp:`` in the config file."""

    servers: tuple[McpServerConfig, ...] = ()
    separator: Annotated[str, Field(min_length=1, max_length=4, pattern=r"^[A-Za-z0-9_.:-]+$")] = (
        "__"
    )
    """Between the server name and the tool (or prompt) name on the aggregated ``/mcp``."""
    session_idle_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 1800.0
    """A client session unused this long is closed (its upstream sessions too)."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` values accepted on ``/mcp`` (``host:port``, ``host:*`` for any port). Empty:
    the address the gateway listens on and ``localhost``/``127.0.0.1`` on any port."""
    allowed_origins: tuple[str, ...] = ()
    """``Origin`` values accepted (a request without ``Origin`` is allowed)."""
    max_result_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = 8 * 1024 * 1024
    """Largest upstream message relayed to a client; larger answers a JSON-RPC error."""
    allow_external: bool = False
    """``/v1/responses`` ``mcp`` tools may name a ``server_url`` that is not a configured
    server: the gateway connects to it (Streamable HTTP) for that request, with the tool's
    ``headers``. Every key whose MCP access allows the tool's ``server_label`` may do so."""
    external_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """Deadline of each request to an external server (connecting and a tool call
    included)."""
    restart_backoff_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    """First wait before a dead ``share: true`` stdio server is started again; doubled on
    each failure in a row, up to ``restart_backoff_max_s``."""
    restart_backoff_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    stderr_tail_bytes: Annotated[int, Field(ge=256, le=1024 * 1024)] = 8192
    """How much of a stdio server's latest stderr output is kept (health, logs)."""
    max_tool_rounds: Annotated[int, Field(ge=1, le=64)] = 8
    """``/v1/responses`` with ``mcp`` tools: the most model rounds whose MCP tool calls the
    gateway runs for one request. A model still calling tools after that many rounds ends
    the response ``incomplete`` (reason ``max_tool_rounds``)."""

    @model_validator(mode="after")
    def _unique(self) -> McpConfig:
        seen: set[str] = set()
        for i, server in enumerate(self.servers):
            if server.name in seen:
                raise ValueError(f"mcp.servers[{i}].name: {server.name!r} is used twice")
            seen.add(server.name)
        return self
