"""Tenancy value types. Limits and budgets are typed settings (``LimitSettings``,
``BudgetSettings``) that turn into the checks the enforcement engines (``sluice.limits``,
``sluice.budgets``) run; a stored value this version cannot read stays ``Unreadable``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from sluice.auth.keys import KeyRecord
from sluice.budgets.spec import BudgetSettings
from sluice.limits.settings import LimitSettings
from sluice.types import Unreadable


class TeamRole(enum.StrEnum):
    MEMBER = "member"
    ADMIN = "team_admin"


class OrgRole(enum.StrEnum):
    MEMBER = "member"
    ADMIN = "org_admin"


@dataclass(frozen=True, slots=True)
class Governance:
    """What every level (org, team, user, key) may set; ``None`` inherits from the parent."""

    models: tuple[str, ...] | None = None
    """Allow list of public model names; ``None``: whatever the parent allows."""
    models_exclude: tuple[str, ...] = ()
    """Models removed at this level and below."""
    limits: LimitSettings | Unreadable | None = None
    """Rate limits (``rpm``, ``tpm_input``, ``tpm_output``, ``max_parallel``, ``rpd``,
    ``tpd_input``, ``tpd_output``) and per-model ones under ``models``."""
    budget: BudgetSettings | Unreadable | None = None
    """US dollars per ``day``, ``week``, ``month`` or ``total``."""
    mcp_servers: tuple[str, ...] | None = None
    """Allow list of MCP server names; ``None``: whatever the parent allows."""
    mcp_servers_exclude: tuple[str, ...] = ()
    """MCP servers removed at this level and below."""
    mcp_tools: tuple[str, ...] | None = None
    """Allow list of tool patterns ``server/tool`` (``*`` matches any run of characters);
    ``None``: whatever the parent allows."""
    mcp_tools_exclude: tuple[str, ...] = ()
    """Tool patterns removed at this level and below."""

    @classmethod
    def of_key(cls, record: KeyRecord) -> Governance:
        """The governance fields stored on a key."""
        return cls(
            record.models,
            record.models_exclude,
            record.limits,
            record.budget,
            record.mcp_servers,
            record.mcp_servers_exclude,
            record.mcp_tools,
            record.mcp_tools_exclude,
        )

    def key_fields(self) -> dict[str, Any]:
        """The governance fields as :class:`KeyRecord` names them (for ``replace``)."""
        return {f: getattr(self, f) for f in GOVERNANCE_FIELDS}

    def to_json(self) -> dict[str, Any]:
        """The stored (and audited) form."""
        return {
            "models": list(self.models) if self.models is not None else None,
            "models_exclude": list(self.models_exclude),
            "limits": self.limits.to_json() if self.limits is not None else None,
            "budget": self.budget.to_json() if self.budget is not None else None,
            "mcp_servers": list(self.mcp_servers) if self.mcp_servers is not None else None,
            "mcp_servers_exclude": list(self.mcp_servers_exclude),
            "mcp_tools": list(self.mcp_tools) if self.mcp_tools is not None else None,
            "mcp_tools_exclude": list(self.mcp_tools_exclude),
        }


def stored_names(value: Any) -> tuple[str, ...] | None:
    """A stored list of names (JSON array or ``None``) as a tuple; ``None`` stays ``None``."""
    return None if value is None else tuple(str(v) for v in value)


GOVERNANCE_FIELDS = (
    "models",
    "models_exclude",
    "limits",
    "budget",
    "mcp_servers",
    "mcp_servers_exclude",
    "mcp_tools",
    "mcp_tools_exclude",
)
"""The fields of :class:`Governance`, which keys carry under the same names."""


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str
    created_at: float
    default_team_id: str | None = None
    governance: Governance = field(default_factory=Governance)
    archived_at: float | None = None
    """When it was archived (its teams archived, their keys revoked); ``None``: live."""


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    org_id: str
    name: str
    created_at: float
    governance: Governance = field(default_factory=Governance)
    managed_by: str | None = None
    """The identity provider whose groups made this team (its members follow the groups);
    ``None``: made by hand."""
    archived_at: float | None = None
    """When it was archived (its keys revoked, hidden from default lists); ``None``: live."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    created_at: float
    is_admin: bool = False
    disabled: bool = False
    max_keys: int | None = None
    """Cap on this user's personal keys; ``None``: the process default."""
    governance: Governance = field(default_factory=Governance)
    archived_at: float | None = None
    """When it was archived (disabled, its keys revoked); ``None``: live."""


@dataclass(frozen=True, slots=True)
class Membership:
    user_id: str
    team_id: str
    role: TeamRole


@dataclass(frozen=True, slots=True)
class OrgMembership:
    user_id: str
    org_id: str
    role: OrgRole


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    id: str
    team_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    target_type: str
    target_id: str
    org_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit entries to read; every field left ``None`` matches all."""

    actor: str | None = None
    """The acting user's (or key's) id."""
    action: str | None = None
    """An action (``team.archive``) or its prefix up to a dot (``team.``)."""
    target_id: str | None = None
    start: float | None = None
    """Entries at or after this time (epoch seconds)."""
    end: float | None = None
    """Entries before this time (epoch seconds)."""


@dataclass(frozen=True, slots=True)
class Directory:
    """Everything the key cache needs to turn a key into a principal, loaded at once."""

    orgs: list[Org]
    teams: list[Team]
    users: list[User]
    memberships: list[Membership]
    org_roles: list[OrgMembership]
    service_accounts: list[ServiceAccount]
