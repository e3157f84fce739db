"""Request and answer bodies of the admin API. Unknown fields are errors, so role, spend and
ownership fields cannot be mass-assigned."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sluice.auth.keys import KeyRecord
from sluice.tenancy.model import Governance, Org, ServiceAccount, Team, User

Count = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelLimits(Strict):
    """Rate limits; every field optional. Per minute unless named per day."""

    rpm: Count | None = None
    tpm_input: Count | None = None
    tpm_output: Count | None = None
    max_parallel: Count | None = None
    rpd: Count | None = None
    tpd_input: Count | None = None
    tpd_output: Count | None = None

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"models"}).items() if v is not None}


class Limits(ModelLimits):
    models: dict[str, ModelLimits] | None = None
    """Limits per public model name, within this level (each model gets its own buckets)."""

    def values(self) -> dict[str, Any]:
        out = super().values()
        if self.models:
            out["models"] = {name: m.values() for name, m in self.models.items()}
        return out


class Budget(Strict):
    usd: Annotated[float, Field(ge=0)]
    period: Literal["day", "week", "month", "total"] = "month"


class GovernanceIn(Strict):
    """The governance fields every level accepts (on create and update)."""

    limits: Limits | None = None
    budget: Budget | None = None
    models: list[str] | None = None
    """Allow list of public model names (aliases allowed); omitted: inherit."""
    models_exclude: list[str] | None = None


def merge_governance(current: Governance, body: GovernanceIn) -> Governance:
    """Apply the fields present in ``body`` (``null`` clears)."""
    fields = body.model_fields_set
    return Governance(
        models=(tuple(body.models) if body.models is not None else None)
        if "models" in fields
        else current.models,
        models_exclude=tuple(body.models_exclude or ())
        if "models_exclude" in fields
        else current.models_exclude,
        limits=(body.limits.values() if body.limits else None)
        if "limits" in fields
        else current.limits,
        budget=(body.budget.model_dump() if body.budget else None)
        if "budget" in fields
        else current.budget,
    )


class GovernanceOut(BaseModel):
    limits: dict[str, Any] | None
    budget: dict[str, Any] | None
    models: list[str] | None
    models_exclude: list[str]

    @classmethod
    def of(cls, g: Governance) -> GovernanceOut:
        return cls(
            limits=g.limits,
            budget=g.budget,
            models=list(g.models) if g.models is not None else None,
            models_exclude=list(g.models_exclude),
        )


def when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class OrgCreate(GovernanceIn):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class OrgUpdate(GovernanceIn):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class OrgOut(GovernanceOut):
    id: str
    name: str
    default_team_id: str | None
    created_at: datetime

    @classmethod
    def of_org(cls, o: Org) -> OrgOut:
        return cls(
            id=o.id,
            name=o.name,
            default_team_id=o.default_team_id,
            created_at=datetime.fromtimestamp(o.created_at, UTC),
            **GovernanceOut.of(o.governance).model_dump(),
        )


class TeamCreate(GovernanceIn):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class TeamUpdate(GovernanceIn):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class TeamOut(GovernanceOut):
    id: str
    org_id: str
    name: str
    created_at: datetime

    @classmethod
    def of_team(cls, t: Team) -> TeamOut:
        return cls(
            id=t.id,
            org_id=t.org_id,
            name=t.name,
            created_at=datetime.fromtimestamp(t.created_at, UTC),
            **GovernanceOut.of(t.governance).model_dump(),
        )


class MemberIn(Strict):
    role: Literal["member", "team_admin"] = "member"


class MemberOut(BaseModel):
    user_id: str
    team_id: str
    role: str


class UserCreate(GovernanceIn):
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    org_id: str | None = None
    """Join this organisation's default team."""
    team_id: str | None = None
    """Join this team (instead of the default team)."""
    max_keys: Count | None = None


class UserUpdate(GovernanceIn):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    disabled: bool | None = None
    max_keys: Count | None = None


class UserOut(GovernanceOut):
    id: str
    email: str
    name: str
    is_admin: bool
    disabled: bool
    max_keys: int | None
    created_at: datetime

    @classmethod
    def of_user(cls, u: User) -> UserOut:
        return cls(
            id=u.id,
            email=u.email,
            name=u.name,
            is_admin=u.is_admin,
            disabled=u.disabled,
            max_keys=u.max_keys,
            created_at=datetime.fromtimestamp(u.created_at, UTC),
            **GovernanceOut.of(u.governance).model_dump(),
        )


class ServiceAccountCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class ServiceAccountOut(BaseModel):
    id: str
    team_id: str
    name: str
    created_at: datetime

    @classmethod
    def of_sa(cls, s: ServiceAccount) -> ServiceAccountOut:
        return cls(
            id=s.id,
            team_id=s.team_id,
            name=s.name,
            created_at=datetime.fromtimestamp(s.created_at, UTC),
        )


class KeyCreate(GovernanceIn):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    team_id: str | None = None
    """The team to bill; for a personal key one of the owner's teams (default: the first)."""
    user_id: str | None = None
    """Owner of a personal key (default: the caller). Admins may create keys for others."""
    service_account_id: str | None = None
    """Owner of a team key (instead of a user)."""
    expires_at: datetime | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class KeyUpdate(GovernanceIn):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    expires_at: datetime | None = None
    metadata: dict[str, str] | None = None


class KeyRotate(Strict):
    grace_s: Annotated[float, Field(ge=0, le=7 * 86400)] = 0.0
    """How long the old secret keeps working (0: invalid at once)."""


class KeyOut(GovernanceOut):
    id: str
    name: str
    preview: str
    user_id: str | None
    service_account_id: str | None
    team_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    metadata: dict[str, str]

    @classmethod
    def of_key(cls, r: KeyRecord) -> KeyOut:
        return cls(
            id=r.id,
            name=r.name,
            preview=r.preview,
            user_id=r.user_id,
            service_account_id=r.service_account_id,
            team_id=r.team_id,
            created_at=datetime.fromtimestamp(r.created_at, UTC),
            expires_at=when(r.expires_at),
            revoked_at=when(r.revoked_at),
            last_used_at=when(r.last_used_at),
            metadata=r.metadata,
            **GovernanceOut.of(
                Governance(r.models, r.models_exclude, r.limits, r.budget)
            ).model_dump(),
        )


class KeyCreated(KeyOut):
    key: str
    """The secret, shown only in this answer."""


class Page(BaseModel):
    data: list[Any]


class AuditOut(BaseModel):
    id: int | None
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    org_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
