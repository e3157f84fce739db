"""Tenancy value types. Limits and budgets are kept as validated plain mappings here; the
enforcement engines (``sluice.limits``, ``sluice.budgets``) read them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


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
    limits: dict[str, Any] | None = None
    """Rate limits (``rpm``, ``tpm_input``, ``tpm_output``, ``max_parallel``, ``rpd``,
    ``tpd_input``, ``tpd_output``) and per-model ones under ``models``."""
    budget: dict[str, Any] | None = None
    """``{"usd": float, "period": "day"|"week"|"month"|"total"}``."""


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str
    created_at: float
    default_team_id: str | None = None
    governance: Governance = field(default_factory=Governance)


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    org_id: str
    name: str
    created_at: float
    governance: Governance = field(default_factory=Governance)


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
class Directory:
    """Everything the key cache needs to turn a key into a principal, loaded at once."""

    orgs: list[Org]
    teams: list[Team]
    users: list[User]
    memberships: list[Membership]
    org_roles: list[OrgMembership]
    service_accounts: list[ServiceAccount]
