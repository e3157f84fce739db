"""MCP servers: the config's (read only) and those admins store here, with their health.
Header and environment values are ``env:NAME`` references; no credential value is accepted
or shown."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StrictBool

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import NO_NUL, Page, Strict
from sluice.auth.principal import Principal
from sluice.config.mcp import SERVER_NAME
from sluice.control.mcp_servers import McpServerView

Transport = Literal["streamable_http", "sse", "stdio"]
ServerName = Annotated[str, Field(pattern=SERVER_NAME.pattern)]
Text = Annotated[str, Field(max_length=4096, pattern=NO_NUL)]
Word = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Ref = Annotated[
    str,
    Field(
        max_length=200,
        pattern=NO_NUL,
        description="An `env:NAME` reference, read when the server is contacted; a secret "
        "value is refused (400 naming the entry)",
    ),
]


class ToolsIn(Strict):
    allow: Annotated[list[Word], Field(max_length=1000)] | None = None
    deny: Annotated[list[Word], Field(max_length=1000)] = []


class McpServerFields(Strict):
    """The fields of ``mcp.servers`` entries in the config (docs/mcp.md); in a change, a
    field set to ``null`` goes back to its default."""

    description: Text | None = None
    tags: Annotated[list[Word], Field(max_length=64)] | None = None
    transport: Transport | None = None
    url: Annotated[str, Field(max_length=2048, pattern=NO_NUL)] | None = None
    headers: Annotated[dict[HeaderName, Ref], Field(max_length=64)] | None = None
    command: Text | None = None
    args: Annotated[list[Text], Field(max_length=256)] | None = None
    env: Annotated[dict[EnvName, Ref], Field(max_length=256)] | None = None
    cwd: Text | None = None
    share: StrictBool | None = None
    allow_private: StrictBool | None = None
    tools: ToolsIn | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] | None = None


class McpServerCreate(McpServerFields):
    name: ServerName
    transport: Transport


class HealthOut(BaseModel):
    up: bool
    last_error: str | None
    restarts: int


class ToolsOut(BaseModel):
    allow: list[str] | None
    deny: list[str]


class McpServerOut(BaseModel):
    name: str
    source: Literal["config", "stored"]
    """``config``: from the config file (read only here); ``stored``: added through this API."""
    description: str
    tags: list[str]
    transport: Transport
    url: str | None
    headers: dict[str, str]
    """Header names with their ``env:NAME`` reference (``***``: a literal in the config)."""
    command: str | None
    args: list[str]
    env: dict[str, str]
    """Variable names with their ``env:NAME`` reference (``***``: a literal in the config)."""
    cwd: str | None
    share: bool
    allow_private: bool
    tools: ToolsOut
    timeout_s: float
    health: HealthOut
    """How the server is doing as this replica sees it."""
    created_at: datetime | None
    updated_at: datetime | None


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _out(view: McpServerView) -> McpServerOut:
    s = view.server
    return McpServerOut(
        name=s.name,
        source=view.source,
        description=s.description,
        tags=list(s.tags),
        transport=s.transport,
        url=view.url,
        headers=view.headers,
        command=s.command,
        args=list(s.args),
        env=view.env,
        cwd=s.cwd,
        share=s.share,
        allow_private=s.allow_private,
        tools=ToolsOut(
            allow=list(s.tools.allow) if s.tools.allow is not None else None,
            deny=list(s.tools.deny),
        ),
        timeout_s=s.timeout_s,
        health=HealthOut(
            up=view.health.up, last_error=view.health.last_error, restarts=view.health.restarts
        ),
        created_at=_time(view.created_at),
        updated_at=_time(view.updated_at),
    )


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(prefix="/mcp/servers", tags=["mcp"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    servers = ctx.control.mcp_servers

    @api.get("", response_model=Page, **policy("admin"))
    async def list_servers(actor: Actor) -> Page:
        return Page(data=[_out(v) for v in await servers.list(actor)])

    @api.get("/{name}", response_model=McpServerOut, **policy("admin"))
    async def get_server(name: str, actor: Actor) -> McpServerOut:
        return _out(await servers.get(actor, name))

    @api.post("", status_code=201, response_model=McpServerOut, **policy("admin", errors=(409,)))
    async def create_server(body: McpServerCreate, actor: Actor) -> McpServerOut:
        fields = body.model_dump(exclude_unset=True, exclude={"name"})
        return _out(await servers.create(actor, body.name, fields))

    @api.patch("/{name}", response_model=McpServerOut, **policy("admin", errors=(409,)))
    async def update_server(name: str, body: McpServerFields, actor: Actor) -> McpServerOut:
        return _out(await servers.update(actor, name, body.model_dump(exclude_unset=True)))

    @api.delete("/{name}", status_code=204, **policy("admin", errors=(409,)))
    async def delete_server(name: str, actor: Actor) -> None:
        await servers.remove(actor, name)

    return api
