"""Request and answer bodies of the admin API. Unknown fields are errors, so role, spend and
ownership fields cannot be mass-assigned."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
)

from sluice.auth.keys import KeyRecord
from sluice.auth.oidc.service import LOCAL, SignIns
from sluice.budgets.spec import BUDGET_USD_MAX, BudgetSettings
from sluice.limits.settings import LimitSettings
from sluice.limits.spec import LIMIT_MAX
from sluice.tenancy import bounds
from sluice.tenancy.model import Governance, Org, ServiceAccount, Team, User

# The bounds live in ``sluice.tenancy.bounds`` (checked again there for the console and CLI);
# declaring them here publishes them in the OpenAPI document. Numbers are strict: ``true``,
# ``"5"`` and ``5.0`` are not counts.
Limit = Annotated[StrictInt, Field(ge=0, le=LIMIT_MAX)]
NO_NUL = r"^[^\x00]*$"
"""Text stored in the database: PostgreSQL refuses NUL characters."""
Name = Annotated[str, Field(min_length=1, max_length=bounds.NAME_MAX_CHARS, pattern=NO_NUL)]
Id = Annotated[str, Field(min_length=1, max_length=bounds.ID_MAX_CHARS, pattern=NO_NUL)]
ModelNames = Annotated[list[Name], Field(max_length=bounds.MODEL_NAMES_MAX)]
McpServerNames = Annotated[
    list[Annotated[str, Field(pattern=bounds.MCP_SERVER_NAME.pattern)]],
    Field(max_length=bounds.MCP_NAMES_MAX),
]
"""MCP server names; a name no server has yet is accepted (servers can be added later)."""
McpToolPatterns = Annotated[
    list[Annotated[str, Field(max_length=300, pattern=bounds.MCP_TOOL_PATTERN.pattern)]],
    Field(max_length=bounds.MCP_NAMES_MAX),
]
"""``server/tool`` patterns; ``*`` matches any run of characters."""
MaxKeys = Annotated[StrictInt, Field(ge=0, le=bounds.MAX_KEYS_MAX)]
Usd = Annotated[float, Field(strict=True, ge=0, le=BUDGET_USD_MAX, allow_inf_nan=False)]
Metadata = Annotated[
    dict[
        Annotated[
            str, Field(min_length=1, max_length=bounds.METADATA_KEY_MAX_CHARS, pattern=NO_NUL)
        ],
        Annotated[str, Field(max_length=bounds.METADATA_VALUE_MAX_CHARS, pattern=NO_NUL)],
    ],
    Field(max_length=bounds.METADATA_ENTRIES_MAX),
]

_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?"
)


def _iso_8601_only(value: Any) -> Any:
    """pydantic also reads numbers (and numeric text) as Unix times; the API documents an
    ISO 8601 date-time, so that is all it takes."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_8601.fullmatch(value):
        raise ValueError("must be an ISO 8601 date and time, like 2026-01-31T12:00:00Z")
    return value


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    """Far years (0001 with a +23:59 offset, 9999) overflow date arithmetic downstream."""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST.timestamp() <= moment.timestamp() < LATEST.timestamp():
        raise ValueError("must be from 1970-01-01 to 2999-12-31 (UTC)")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601_only), AfterValidator(_in_range)]
"""A date and time as ISO 8601 text (naive is UTC), from 1970 to 2999."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelLimits(Strict):
    """Rate limits; every field optional. Per minute unless named per day."""

    rpm: Limit | None = None
    tpm_input: Limit | None = None
    tpm_output: Limit | None = None
    max_parallel: Limit | None = None
    rpd: Limit | None = None
    tpd_input: Limit | None = None
    tpd_output: Limit | None = None

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"models"}).items() if v is not None}


class Limits(ModelLimits):
    mcp_rpm: Limit | None = None
    """MCP tool calls per minute (counted apart from model requests; not per model)."""
    models: Annotated[dict[Name, ModelLimits], Field(max_length=bounds.MODEL_NAMES_MAX)] | None = (
        None
    )
    """Limits per public model name, within this level (each model gets its own buckets)."""

    def values(self) -> dict[str, Any]:
        out = super().values()
        if self.models:
            out["models"] = {name: m.values() for name, m in self.models.items()}
        return out

    def settings(self) -> LimitSettings:
        models = {name: LimitSettings(**m.values()) for name, m in (self.models or {}).items()}
        return LimitSettings(**super().values(), models=models)


class Budget(Strict):
    usd: Usd
    period: Literal["day", "week", "month", "total"] = "month"

    def settings(self) -> BudgetSettings:
        return BudgetSettings(usd=self.usd, period=self.period)


class CapsIn(Strict):
    """The global caps (``PUT /global``): limits, budget, model lists (no MCP lists)."""

    limits: Limits | None = None
    budget: Budget | None = None
    models: ModelNames | None = None
    """Allow list of public model names (aliases allowed); omitted: inherit."""
    models_exclude: ModelNames | None = None


class GovernanceIn(CapsIn):
    """The governance fields every level accepts (on create and update)."""

    mcp_servers: McpServerNames | None = None
    """Allow list of MCP server names; omitted: inherit."""
    mcp_servers_exclude: McpServerNames | None = None
    mcp_tools: McpToolPatterns | None = None
    """Allow list of tool patterns ``server/tool`` (``*`` wildcard); omitted: inherit."""
    mcp_tools_exclude: McpToolPatterns | None = None


def _names(body: CapsIn, name: str, current: tuple[str, ...] | None) -> Any:
    """A list field of ``body`` when present (``null`` clears), else ``current``."""
    if name not in body.model_fields_set:
        return current
    value = getattr(body, name)
    return tuple(value) if value is not None else None


def merge_governance(current: Governance, body: CapsIn) -> Governance:
    """Apply the fields present in ``body`` (``null`` clears)."""
    fields = body.model_fields_set
    return Governance(
        models=(tuple(body.models) if body.models is not None else None)
        if "models" in fields
        else current.models,
        models_exclude=tuple(body.models_exclude or ())
        if "models_exclude" in fields
        else current.models_exclude,
        limits=(body.limits.settings() if body.limits else None)
        if "limits" in fields
        else current.limits,
        budget=(body.budget.settings() if body.budget else None)
        if "budget" in fields
        else current.budget,
        mcp_servers=_names(body, "mcp_servers", current.mcp_servers),
        mcp_servers_exclude=_names(body, "mcp_servers_exclude", current.mcp_servers_exclude) or (),
        mcp_tools=_names(body, "mcp_tools", current.mcp_tools),
        mcp_tools_exclude=_names(body, "mcp_tools_exclude", current.mcp_tools_exclude) or (),
    )


class GovernanceOut(BaseModel):
    limits: dict[str, Any] | None
    """As stored (a value an older version stored that this one cannot read, too)."""
    budget: dict[str, Any] | None
    models: list[str] | None
    models_exclude: list[str]
    mcp_servers: list[str] | None = None
    mcp_servers_exclude: list[str] = Field(default_factory=list)
    mcp_tools: list[str] | None = None
    mcp_tools_exclude: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, g: Governance) -> GovernanceOut:
        return cls(
            limits=g.limits.to_json() if g.limits is not None else None,
            budget=g.budget.to_json() if g.budget is not None else None,
            models=list(g.models) if g.models is not None else None,
            models_exclude=list(g.models_exclude),
            mcp_servers=list(g.mcp_servers) if g.mcp_servers is not None else None,
            mcp_servers_exclude=list(g.mcp_servers_exclude),
            mcp_tools=list(g.mcp_tools) if g.mcp_tools is not None else None,
            mcp_tools_exclude=list(g.mcp_tools_exclude),
        )


def when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class OrgCreate(GovernanceIn):
    name: Name


class OrgUpdate(GovernanceIn):
    name: Name | None = None


def _at(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


class OrgOut(GovernanceOut):
    id: str
    name: str
    default_team_id: str | None
    created_at: datetime
    archived_at: datetime | None = Field(
        default=None, description="When it was archived (its keys revoked); null: live."
    )

    @classmethod
    def of_org(cls, o: Org) -> OrgOut:
        return cls(
            id=o.id,
            name=o.name,
            default_team_id=o.default_team_id,
            created_at=datetime.fromtimestamp(o.created_at, UTC),
            archived_at=_at(o.archived_at),
            **GovernanceOut.of(o.governance).model_dump(),
        )


class TeamCreate(GovernanceIn):
    name: Name


class TeamUpdate(GovernanceIn):
    name: Name | None = None


class TeamOut(GovernanceOut):
    id: str
    org_id: str
    name: str
    created_at: datetime
    managed_by: str | None = Field(
        default=None,
        description="The identity provider whose groups made the team (members follow the "
        "groups); null: made by hand.",
    )
    archived_at: datetime | None = Field(
        default=None, description="When it was archived (its keys revoked); null: live."
    )

    @classmethod
    def of_team(cls, t: Team) -> TeamOut:
        return cls(
            id=t.id,
            org_id=t.org_id,
            name=t.name,
            managed_by=t.managed_by,
            created_at=datetime.fromtimestamp(t.created_at, UTC),
            archived_at=_at(t.archived_at),
            **GovernanceOut.of(t.governance).model_dump(),
        )


class MemberIn(Strict):
    role: Literal["member", "team_admin"] = "member"


class MemberOut(BaseModel):
    user_id: str
    team_id: str
    role: str


class UserCreate(GovernanceIn):
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]
    name: Name
    org_id: Id | None = None
    """Join this organisation's default team."""
    team_id: Id | None = None
    """Join this team (instead of the default team)."""
    max_keys: MaxKeys | None = None


class UserUpdate(GovernanceIn):
    name: Name | None = None
    disabled: StrictBool | None = None
    max_keys: MaxKeys | None = None


class UserOut(GovernanceOut):
    id: str
    email: str
    name: str
    is_admin: bool
    disabled: bool
    max_keys: int | None
    created_at: datetime
    archived_at: datetime | None = Field(
        default=None, description="When it was archived (its keys revoked); null: live."
    )
    identity_source: str = Field(
        default="local", description="local, or the identity providers the person signs in with"
    )
    last_sign_in_at: datetime | None = Field(
        default=None, description="Latest sign-in through an identity provider."
    )
    groups: list[str] = Field(default_factory=list, description="Groups claim at that sign-in.")

    @classmethod
    def of_user(cls, u: User, sign_ins: SignIns = LOCAL) -> UserOut:
        last = sign_ins.last_sign_in_at
        return cls(
            identity_source=sign_ins.source,
            last_sign_in_at=datetime.fromtimestamp(last, UTC) if last is not None else None,
            groups=list(sign_ins.groups),
            id=u.id,
            email=u.email,
            name=u.name,
            is_admin=u.is_admin,
            disabled=u.disabled,
            max_keys=u.max_keys,
            created_at=datetime.fromtimestamp(u.created_at, UTC),
            archived_at=_at(u.archived_at),
            **GovernanceOut.of(u.governance).model_dump(),
        )


class ServiceAccountCreate(Strict):
    name: Name


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
    name: Name
    team_id: Id | None = None
    """The team to bill; for a personal key one of the owner's teams (default: the first)."""
    user_id: Id | None = None
    """Owner of a personal key (default: the caller). Admins may create keys for others."""
    service_account_id: Id | None = None
    """Owner of a team key (instead of a user)."""
    expires_at: IsoDateTime | None = None
    """When the key stops working; in the future (at most 100 years ahead). Naive is UTC."""
    metadata: Metadata = Field(default_factory=dict)


class KeyUpdate(GovernanceIn):
    name: Name | None = None
    expires_at: IsoDateTime | None = None
    """In the future (at most 100 years ahead); ``null`` removes the expiry. Naive is UTC."""
    metadata: Metadata | None = None


class KeyRotate(Strict):
    grace_s: Annotated[float, Field(strict=True, ge=0, le=7 * 86400, allow_inf_nan=False)] = 0.0
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
            **GovernanceOut.of(Governance.of_key(r)).model_dump(),
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
