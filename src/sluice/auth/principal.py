"""Who a request runs as: the key, its owner, where it sits, what it may do."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sluice.budgets.spec import BudgetSettings, BudgetSpec
from sluice.limits.settings import LimitSettings
from sluice.limits.spec import LimitSpec

LimitCheck = tuple[str, LimitSpec]
BudgetCheck = tuple[str, BudgetSpec]


S = TypeVar("S", LimitSettings, BudgetSettings)


@dataclass(frozen=True, slots=True)
class Scoped(Generic[S]):
    """One level's rate limits or budget, named by its scope (``key:ID``, ``team:ID`` ...)."""

    scope: str
    spec: S


@dataclass(frozen=True, slots=True)
class McpAccess:
    """The MCP servers and tools a principal may use, after every level narrowed (the rule
    of model access: a lower level can only narrow).

    Tool patterns are ``server/tool``; ``*`` matches any run of characters (``github/*``).
    """

    servers: frozenset[str] | None = None
    """Server names this principal may use; ``None``: every configured server."""
    tools_allow: tuple[tuple[str, ...], ...] = ()
    """One pattern list per level that set an allow list: a tool must match each of them."""
    tools_deny: tuple[str, ...] = ()
    """A tool matching any of these is excluded."""
    servers_deny: frozenset[str] = frozenset()
    """Servers excluded by some level (``mcp_servers_exclude``); kept apart from ``servers``
    because servers can be added after the key cache was filled, and an exclusion must hold
    for them too."""

    def may_use_server(self, server: str) -> bool:
        if server in self.servers_deny:
            return False
        return self.servers is None or server in self.servers

    def may_use_tool(self, server: str, tool: str) -> bool:
        if not self.may_use_server(server):
            return False
        name = f"{server}/{tool}"
        if any(_matches(p, name) for p in self.tools_deny):
            return False
        return all(any(_matches(p, name) for p in level) for level in self.tools_allow)


def _matches(pattern: str, name: str) -> bool:
    if "*" not in pattern:
        return pattern == name
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), name) is not None


MCP_ALL = McpAccess()


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    is_admin: bool = False
    models: frozenset[str] | None = None
    """Canonical public model names this principal may call; ``None``: all."""
    user_id: str | None = None
    service_account_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    org_admin_of: frozenset[str] = frozenset()
    team_admin_of: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    """Teams the owner belongs to (a service account: its team)."""
    limits: tuple[Scoped[LimitSettings], ...] = ()
    """Rate limits of every level as configured, key first."""
    budgets: tuple[Scoped[BudgetSettings], ...] = ()
    """Budgets of every level as configured, key first."""
    limit_checks: tuple[LimitCheck, ...] = ()
    """The limits every request of this principal reserves against."""
    model_limits: dict[str, tuple[LimitCheck, ...]] = field(default_factory=dict)
    """Extra limits per canonical model name (``limits.models`` at any level)."""
    budget_checks: tuple[BudgetCheck, ...] = ()
    terms_pending: str | None = None
    """The terms-of-service version the owner must accept before this principal is let in
    (``403 terms_not_accepted``); ``None``: nothing pending."""
    mcp: McpAccess = MCP_ALL
    """The MCP servers and tools this principal may use."""
    mcp_limit_checks: tuple[LimitCheck, ...] = ()
    """The limits every MCP tool call of this principal is counted against (``mcp_rpm`` of
    every level, as ``<scope>:mcp`` buckets: apart from model requests)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def checks_for(self, model: str) -> tuple[LimitCheck, ...]:
        extra = self.model_limits.get(model)
        return self.limit_checks + extra if extra else self.limit_checks

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


MASTER_KEY_ID = "master"
MASTER = Principal(key_id=MASTER_KEY_ID, name="master key", is_admin=True)
