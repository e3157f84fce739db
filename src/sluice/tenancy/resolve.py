"""From a key and the directory to a principal: the one rule for model access and the chain
of limits and budgets.

Model access (documented in docs/governance.md): start from every configured model; at each
level from the organisation down to the key, an allow list (when set) intersects and an
exclusion list removes. A lower level can only narrow. Names are resolved through aliases
first, so excluding a model excludes all its aliases and excluding an alias excludes its model.
MCP server and tool access (docs/mcp.md) follows the same rule, without aliases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sluice.auth.keys import KeyRecord
from sluice.auth.principal import MCP_ALL, LimitCheck, McpAccess, Principal, Scoped
from sluice.budgets.spec import BudgetSettings
from sluice.limits.settings import LimitSettings
from sluice.tenancy.model import (
    Directory,
    Governance,
    Membership,
    Org,
    OrgMembership,
    OrgRole,
    ServiceAccount,
    Team,
    TeamRole,
    User,
)
from sluice.tenancy.terms import TermsGate
from sluice.types import Unreadable

log = logging.getLogger("sluice.tenancy")


@dataclass(frozen=True, slots=True)
class DirectoryIndex:
    orgs: dict[str, Org]
    teams: dict[str, Team]
    users: dict[str, User]
    service_accounts: dict[str, ServiceAccount]
    memberships: dict[str, list[Membership]]
    """By user id."""
    org_roles: dict[str, list[OrgMembership]]
    """By user id."""
    terms: TermsGate | None = None
    """The terms of service people must accept (``auth.terms``); ``None``: no terms."""

    def terms_pending(self, user: User | None) -> str | None:
        """The terms version ``user`` must accept first; ``None`` when nothing is pending
        (no terms, accepted, an exempt admin, or no person: a service account)."""
        gate = self.terms
        if gate is None or user is None or not gate.pending(user):
            return None
        return gate.version

    @classmethod
    def build(cls, directory: Directory, *, terms: TermsGate | None = None) -> DirectoryIndex:
        by_user: dict[str, list[Membership]] = {}
        for m in directory.memberships:
            by_user.setdefault(m.user_id, []).append(m)
        roles: dict[str, list[OrgMembership]] = {}
        for r in directory.org_roles:
            roles.setdefault(r.user_id, []).append(r)
        return cls(
            {o.id: o for o in directory.orgs},
            {t.id: t for t in directory.teams},
            {u.id: u for u in directory.users},
            {s.id: s for s in directory.service_accounts},
            by_user,
            roles,
            terms,
        )


EMPTY = DirectoryIndex({}, {}, {}, {}, {}, {})


def effective_models(
    levels: Iterable[Governance | None],
    *,
    everything: frozenset[str],
    canonical: Callable[[str], str | None],
) -> frozenset[str] | None:
    """The models allowed after every level narrowed; ``None`` when nothing narrowed."""
    allowed: frozenset[str] | None = None
    for level in levels:
        if level is None:
            continue
        if level.models is not None:
            names = {c for n in level.models if (c := canonical(n)) is not None}
            allowed = frozenset(names) if allowed is None else allowed & names
        if level.models_exclude:
            gone = {c for n in level.models_exclude if (c := canonical(n)) is not None}
            allowed = (everything if allowed is None else allowed) - gone
    return allowed


def effective_mcp(levels: Iterable[Governance | None]) -> McpAccess:
    """The MCP servers and tools allowed after every level narrowed (the model rule): an
    allow list intersects, an exclusion removes; tool allow lists are kept one per level (a
    tool must match each), tool exclusions add up."""
    servers: frozenset[str] | None = None
    servers_deny: set[str] = set()
    tools_allow: list[tuple[str, ...]] = []
    tools_deny: list[str] = []
    for level in levels:
        if level is None:
            continue
        if level.mcp_servers is not None:
            names = frozenset(level.mcp_servers)
            servers = names if servers is None else servers & names
        servers_deny.update(level.mcp_servers_exclude)
        if level.mcp_tools is not None:
            tools_allow.append(tuple(level.mcp_tools))
        tools_deny.extend(p for p in level.mcp_tools_exclude if p not in tools_deny)
    if servers is None and not servers_deny and not tools_allow and not tools_deny:
        return MCP_ALL
    return McpAccess(
        servers=servers - servers_deny if servers is not None else None,
        tools_allow=tuple(tools_allow),
        tools_deny=tuple(tools_deny),
        servers_deny=frozenset(servers_deny),
    )


def principal_for(
    record: KeyRecord,
    index: DirectoryIndex,
    *,
    everything: frozenset[str],
    canonical: Callable[[str], str | None],
) -> Principal | None:
    """The principal of a key; ``None`` when its owner is gone or disabled, or when a level's
    stored limits or budget cannot be read (the key then fails closed, and one odd row never
    stops the cache from loading every other key, revocations included)."""
    try:
        return _principal(record, index, everything=everything, canonical=canonical)
    except (TypeError, ValueError, KeyError, AttributeError):
        log.warning("key %s: unreadable limits or budget stored; the key is refused", record.id)
        return None


def _principal(
    record: KeyRecord,
    index: DirectoryIndex,
    *,
    everything: frozenset[str],
    canonical: Callable[[str], str | None],
) -> Principal | None:
    user = index.users.get(record.user_id) if record.user_id else None
    sa = (
        index.service_accounts.get(record.service_account_id) if record.service_account_id else None
    )
    if (record.user_id and (user is None or user.disabled)) or (
        record.service_account_id and sa is None
    ):
        return None
    team_id = record.team_id or (sa.team_id if sa else None)
    team = index.teams.get(team_id) if team_id else None
    org = index.orgs.get(team.org_id) if team else None
    key_gov = Governance.of_key(record)
    levels = [
        ("org", org.id if org else None, org.governance if org else None),
        ("team", team.id if team else None, team.governance if team else None),
        ("user", user.id if user else None, user.governance if user else None),
        ("key", record.id, key_gov),
    ]
    models = effective_models((g for _, _, g in levels), everything=everything, canonical=canonical)
    limits = tuple(
        Scoped(f"{kind}:{ident}", _readable(g.limits))
        for kind, ident, g in reversed(levels)
        if g is not None and ident is not None and g.limits
    )
    budgets = tuple(
        Scoped(f"{kind}:{ident}", _readable(g.budget))
        for kind, ident, g in reversed(levels)
        if g is not None and ident is not None and g.budget is not None
    )
    limit_checks, model_limits = _limit_checks(limits, canonical)
    mcp_limit_checks = tuple(
        (f"{level.scope}:mcp", spec) for level in limits if (spec := level.spec.mcp_spec())
    )
    budget_checks = tuple((b.scope, b.spec.spec()) for b in budgets)
    memberships = index.memberships.get(user.id, []) if user else []
    roles = index.org_roles.get(user.id, []) if user else []
    return Principal(
        key_id=record.id,
        name=record.name,
        is_admin=bool(user and user.is_admin),
        models=models,
        user_id=user.id if user else None,
        service_account_id=sa.id if sa else None,
        team_id=team.id if team else None,
        org_id=org.id if org else None,
        org_admin_of=frozenset(r.org_id for r in roles if r.role is OrgRole.ADMIN),
        team_admin_of=frozenset(m.team_id for m in memberships if m.role is TeamRole.ADMIN),
        teams=frozenset(m.team_id for m in memberships) | ({sa.team_id} if sa else set()),
        limits=limits,
        budgets=budgets,
        limit_checks=limit_checks,
        model_limits=model_limits,
        budget_checks=budget_checks,
        terms_pending=index.terms_pending(user),
        mcp=effective_mcp(g for _, _, g in levels),
        mcp_limit_checks=mcp_limit_checks,
    )


S = TypeVar("S", LimitSettings, BudgetSettings)


def _readable(value: S | Unreadable | None) -> S:
    if isinstance(value, Unreadable):
        raise ValueError(value.reason)
    assert value is not None
    return value


def _limit_checks(
    levels: tuple[Scoped[LimitSettings], ...], canonical: Callable[[str], str | None]
) -> tuple[tuple[LimitCheck, ...], dict[str, tuple[LimitCheck, ...]]]:
    """Limit checks of every level; ``limits.models.<name>`` become per-model scopes."""
    checks: list[LimitCheck] = []
    per_model: dict[str, list[LimitCheck]] = {}
    for level in levels:
        spec = level.spec.spec()
        if spec is not None:
            checks.append((level.scope, spec))
        for name, values in level.spec.models.items():
            model = canonical(name)
            model_spec = values.spec()
            if model is not None and model_spec is not None:
                per_model.setdefault(model, []).append((f"{level.scope}:model:{model}", model_spec))
    return tuple(checks), {m: tuple(c) for m, c in per_model.items()}
