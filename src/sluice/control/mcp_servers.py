"""MCP servers admins manage through the admin API: validated like the config's, stored with
``env:`` references only (no secret reaches the database), audited, and loaded into the
process's registry whenever the change counter moves (this process at once, the others on
their next poll or Redis message)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.mcp import SHAPE_ERROR, McpConfig, McpServerConfig
from sluice.config.secrets import SecretRef
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.mcp.health import ServerHealth
from sluice.storage.mcp_servers import McpServerRepository, StoredMcpServer
from sluice.tenancy.changes import unique
from sluice.tenancy.rules import forbidden, not_found
from sluice.tenancy.service import Tenancy

if TYPE_CHECKING:
    from sluice.mcp.registry import Registry

log = logging.getLogger("sluice.mcp")

ENV_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]{0,127}$")
"""The only value a stored header or environment entry may have."""
_REF_FIELDS = ("headers", "env")
HIDDEN = "***"
"""Shown instead of a literal header or environment value of a config server."""
NO_HEALTH = ServerHealth(up=False, last_error=None, restarts=0)


@dataclass(frozen=True, slots=True)
class McpServerView:
    """A server as admins see it: every field but credential values."""

    server: McpServerConfig
    source: Literal["config", "stored"]
    headers: dict[str, str]
    """Header names with their ``env:NAME`` reference (``***`` for a literal in the config)."""
    env: dict[str, str]
    url: str | None
    """The URL without any user:password part."""
    health: ServerHealth
    created_at: float | None
    updated_at: float | None


def _admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise forbidden("only admins manage MCP servers")


def _shown_refs(refs: Mapping[str, SecretRef]) -> dict[str, str]:
    out = {}
    for key, ref in refs.items():
        env = ref.env_name
        out[key] = f"env:{env}" if env is not None else HIDDEN
    return out


def _shown_url(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=f"{HIDDEN}@{parts.netloc.rsplit('@', 1)[1]}").geturl()


def spec_of(server: McpServerConfig) -> dict[str, Any]:
    """What is stored of a validated server: its fields as JSON, ``env:`` references kept."""
    spec = server.model_dump(mode="json", exclude={"name", *_REF_FIELDS})
    for field in _REF_FIELDS:
        refs: Mapping[str, SecretRef] = getattr(server, field)
        spec[field] = {k: f"env:{v.env_name}" for k, v in refs.items()}
    return spec


def validated(name: str, spec: Mapping[str, Any]) -> McpServerConfig:
    """A server from API input: ``env:`` references only, no credentials in the URL, then
    every rule of the config file. ``BadRequest`` names the field to blame."""
    for field in _REF_FIELDS:
        values = spec.get(field)
        if isinstance(values, Mapping):
            for key, value in values.items():
                if not isinstance(value, str) or not ENV_REF.match(value):
                    raise BadRequest(
                        f"{field}.{key}: must be an env: reference (env:NAME); "
                        "secret values are not stored",
                        param=f"{field}.{key}",
                    )
    url = spec.get("url")
    if isinstance(url, str) and "@" in url.split("?", 1)[0].split("#", 1)[0]:
        raise BadRequest(
            "url: must not carry credentials (put them in headers as env: references)",
            param="url",
        )
    try:
        return McpServerConfig.model_validate({**spec, "name": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        if not field and first["type"] == SHAPE_ERROR:
            field = str((first.get("ctx") or {}).get("field", ""))
        raise BadRequest(
            f"{field}: {first['msg']}" if field else str(first["msg"]), param=field or None
        ) from None


class McpServerService:
    """Lists, adds, changes and removes the stored MCP servers (admins only, audited), and
    loads them into the registry (:meth:`load`, run by the key sync)."""

    def __init__(
        self,
        config: McpConfig,
        repo: McpServerRepository,
        tenancy: Tenancy,
        *,
        registry: Registry,
        clock: Clock,
    ) -> None:
        self._config = {s.name: s for s in config.servers}
        self._repo = repo
        self._tenancy = tenancy
        self._registry = registry
        self._clock = clock

    async def list(self, actor: Principal) -> list[McpServerView]:
        _admin_only(actor)
        stored = {r.name: r for r in await self._repo.all() if r.name not in self._config}
        views = [self._view(s, None) for s in self._config.values()]
        views += [v for r in stored.values() if (v := self._stored_view(r)) is not None]
        return sorted(views, key=lambda v: v.server.name)

    async def get(self, actor: Principal, name: str) -> McpServerView:
        _admin_only(actor)
        if name in self._config:
            return self._view(self._config[name], None)
        record = await self._repo.get(name)
        view = self._stored_view(record) if record is not None else None
        if view is None:
            raise not_found("MCP server", name)
        return view

    async def create(self, actor: Principal, name: str, fields: Mapping[str, Any]) -> McpServerView:
        _admin_only(actor)
        self._not_config(name)
        server = validated(name, {k: v for k, v in fields.items() if v is not None})
        now = self._clock.now()
        record = StoredMcpServer(name, spec_of(server), now, now)
        async with self._tenancy.changing(
            actor, "mcp.server_create", ("mcp_server", name), after=record.spec
        ) as unit:
            await unique(unit.mcp_servers.add(record), "MCP server", name)
        return self._view(server, record)

    async def update(self, actor: Principal, name: str, fields: Mapping[str, Any]) -> McpServerView:
        """Change the given fields; ``None`` puts a field back to its default."""
        _admin_only(actor)
        self._not_config(name)
        old = await self._repo.get(name)
        if old is None:
            raise not_found("MCP server", name)
        merged = {k: v for k, v in {**old.spec, **fields}.items() if v is not None}
        server = validated(name, merged)
        record = StoredMcpServer(name, spec_of(server), old.created_at, self._clock.now())
        async with self._tenancy.changing(
            actor, "mcp.server_update", ("mcp_server", name), before=old.spec, after=record.spec
        ) as unit:
            if not await unit.mcp_servers.update(record):
                raise not_found("MCP server", name)
        return self._view(server, record)

    async def remove(self, actor: Principal, name: str) -> None:
        """Remove a stored server; its sessions and processes end on every replica."""
        _admin_only(actor)
        self._not_config(name)
        old = await self._repo.get(name)
        if old is None:
            raise not_found("MCP server", name)
        async with self._tenancy.changing(
            actor, "mcp.server_delete", ("mcp_server", name), before=old.spec
        ) as unit:
            if not await unit.mcp_servers.delete(name):
                raise not_found("MCP server", name)

    async def load(self) -> None:
        """Hand the stored servers to the registry. One the config now names, or that no
        longer validates (a rule tightened since), is logged and left out."""
        servers = []
        for record in await self._repo.all():
            if record.name in self._config:
                log.warning("stored MCP server %r is shadowed by the config's", record.name)
                continue
            try:
                servers.append(validated(record.name, record.spec))
            except GatewayError as exc:
                log.error("stored MCP server %r is left out: %s", record.name, exc.message)
        await self._registry.set_stored(servers)

    # internals ------------------------------------------------------------------------
    def _not_config(self, name: str) -> None:
        if name in self._config:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"MCP server {name!r} is defined in the config file; change it there",
                status=409,
                code="conflict",
            )

    def _stored_view(self, record: StoredMcpServer) -> McpServerView | None:
        try:
            server = validated(record.name, record.spec)
        except GatewayError:
            return None
        return self._view(server, record)

    def _view(self, server: McpServerConfig, record: StoredMcpServer | None) -> McpServerView:
        return McpServerView(
            server=server,
            source="stored" if record is not None else "config",
            headers=_shown_refs(server.headers),
            env=_shown_refs(server.env),
            url=_shown_url(server.url),
            health=self._registry.health().get(server.name, NO_HEALTH),
            created_at=record.created_at if record is not None else None,
            updated_at=record.updated_at if record is not None else None,
        )
