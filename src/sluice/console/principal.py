"""The signed-in person's :class:`Principal`, built from the key cache's directory the way
a personal key's principal is, so the console asks the tenancy services exactly what the
admin API would for that person."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sluice.auth.principal import McpAccess, Principal
from sluice.tenancy.model import Governance, OrgRole, TeamRole
from sluice.tenancy.resolve import DirectoryIndex, effective_mcp, effective_models


@dataclass(frozen=True, slots=True)
class AnyOfMcp(McpAccess):
    """A person in several teams: a server or tool is theirs when the chain of one of their
    teams allows it (as a key of theirs in that team would)."""

    chains: tuple[McpAccess, ...] = ()

    def may_use_server(self, server: str) -> bool:
        return any(c.may_use_server(server) for c in self.chains)

    def may_use_tool(self, server: str, tool: str) -> bool:
        return any(c.may_use_tool(server, tool) for c in self.chains)


def mcp_access(chains: list[list[Governance | None]]) -> McpAccess:
    """The MCP servers and tools a person may use with some key of theirs."""
    accesses = tuple(effective_mcp(chain) for chain in chains)
    return accesses[0] if len(accesses) == 1 else AnyOfMcp(chains=accesses)


def user_principal(
    index: DirectoryIndex,
    user_id: str,
    *,
    everything: frozenset[str],
    canonical: Callable[[str], str | None],
) -> Principal | None:
    """``None`` when the user is gone or disabled (their session then ends)."""
    user = index.users.get(user_id)
    if user is None or user.disabled:
        return None
    memberships = index.memberships.get(user_id, [])
    roles = index.org_roles.get(user_id, [])
    teams = [index.teams[m.team_id] for m in memberships if m.team_id in index.teams]
    # The models this person may call with some key of theirs: the union over their teams
    # of what org, team and user allow (a key can only narrow further).
    chains: list[list[Governance | None]] = []
    for team in teams:
        org = index.orgs.get(team.org_id)
        chains.append([org.governance if org else None, team.governance, user.governance])
    if not chains:
        chains.append([user.governance])
    allowed: set[str] = set()
    models: frozenset[str] | None = frozenset()
    for chain in chains:
        narrowed = effective_models(chain, everything=everything, canonical=canonical)
        if narrowed is None:
            models = None
            break
        allowed |= narrowed
    if models is not None:
        models = frozenset(allowed)
    first = teams[0] if teams else None
    return Principal(
        key_id=f"console:{user.id}",
        name=user.email,
        is_admin=user.is_admin,
        models=models,
        user_id=user.id,
        team_id=first.id if first else None,
        org_id=first.org_id if first else None,
        org_admin_of=frozenset(r.org_id for r in roles if r.role is OrgRole.ADMIN),
        team_admin_of=frozenset(m.team_id for m in memberships if m.role is TeamRole.ADMIN),
        teams=frozenset(t.id for t in teams),
        mcp=mcp_access(chains),
    )
