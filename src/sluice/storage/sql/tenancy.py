"""SQL repository for the tenancy aggregates and the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.budgets.spec import stored_budget
from sluice.limits.settings import stored_limits
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import bump as _bump
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.unit import Database
from sluice.tenancy.model import (
    AuditEntry,
    AuditFilter,
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
    stored_names,
)


def _gov_values(g: Governance) -> dict[str, Any]:
    return g.to_json()


def _gov(row: Any) -> Governance:
    return Governance(
        models=tuple(row.models) if row.models is not None else None,
        models_exclude=tuple(row.models_exclude or ()),
        limits=stored_limits(row.limits),
        budget=stored_budget(row.budget),
        mcp_servers=stored_names(row.mcp_servers),
        mcp_servers_exclude=stored_names(row.mcp_servers_exclude) or (),
        mcp_tools=stored_names(row.mcp_tools),
        mcp_tools_exclude=stored_names(row.mcp_tools_exclude) or (),
    )


def _created(row: Any) -> float:
    value = _ts(row.created_at)
    assert value is not None
    return value


def _org(row: Any) -> Org:
    return Org(
        row.id, row.name, _created(row), row.default_team_id, _gov(row), _ts(row.archived_at)
    )


def _team(row: Any) -> Team:
    return Team(
        row.id,
        row.org_id,
        row.name,
        _created(row),
        _gov(row),
        row.managed_by,
        _ts(row.archived_at),
    )


def _user(row: Any) -> User:
    return User(
        row.id,
        row.email,
        row.name,
        _created(row),
        row.is_admin,
        row.disabled,
        row.max_keys,
        _gov(row),
        _ts(row.archived_at),
    )


class SqlTenancy:
    """Every write bumps the directory version, so every process reloads its key cache."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _write(self, *statements: Any) -> None:
        async with self._db.begin() as conn:
            for statement in statements:
                await conn.execute(statement)
            await _bump(conn, t.KEYS_VERSION)

    async def _one(self, table: Table, key: str) -> Any:
        async with self._db.connect() as conn:
            return (await conn.execute(select(table).where(table.c.id == key))).first()

    # organisations
    async def create_org(self, org: Org, default_team: Team) -> None:
        await self._write(
            t.orgs.insert().values(
                id=org.id,
                name=org.name,
                default_team_id=org.default_team_id,
                created_at=_dt(org.created_at),
                **_gov_values(org.governance),
            ),
            _team_insert(default_team),
        )

    async def update_org(self, org: Org) -> None:
        await self._write(
            update(t.orgs)
            .where(t.orgs.c.id == org.id)
            .values(
                name=org.name,
                default_team_id=org.default_team_id,
                archived_at=_dt(org.archived_at),
                **_gov_values(org.governance),
            )
        )

    async def get_org(self, org_id: str) -> Org | None:
        row = await self._one(t.orgs, org_id)
        return _org(row) if row is not None else None

    # teams
    async def create_team(self, team: Team) -> None:
        await self._write(_team_insert(team))

    async def update_team(self, team: Team) -> None:
        await self._write(
            update(t.teams)
            .where(t.teams.c.id == team.id)
            .values(
                name=team.name,
                archived_at=_dt(team.archived_at),
                **_gov_values(team.governance),
            )
        )

    async def get_team(self, team_id: str) -> Team | None:
        row = await self._one(t.teams, team_id)
        return _team(row) if row is not None else None

    # users
    async def create_user(self, user: User, membership: Membership | None = None) -> None:
        extra = (
            (
                t.memberships.insert().values(
                    user_id=membership.user_id,
                    team_id=membership.team_id,
                    role=membership.role.value,
                ),
            )
            if membership is not None
            else ()
        )
        await self._write(
            t.users.insert().values(
                id=user.id,
                email=user.email,
                name=user.name,
                is_admin=user.is_admin,
                disabled=user.disabled,
                max_keys=user.max_keys,
                created_at=_dt(user.created_at),
                **_gov_values(user.governance),
            ),
            *extra,
        )

    async def update_user(self, user: User) -> None:
        await self._write(
            update(t.users)
            .where(t.users.c.id == user.id)
            .values(
                email=user.email,
                name=user.name,
                is_admin=user.is_admin,
                disabled=user.disabled,
                max_keys=user.max_keys,
                archived_at=_dt(user.archived_at),
                **_gov_values(user.governance),
            )
        )

    async def get_user(self, user_id: str) -> User | None:
        row = await self._one(t.users, user_id)
        return _user(row) if row is not None else None

    async def user_by_email(self, email: str) -> User | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(t.users).where(t.users.c.email == email))).first()
        return _user(row) if row is not None else None

    # memberships
    async def set_membership(self, m: Membership) -> None:
        async with self._db.begin() as conn:
            await _upsert(
                conn,
                t.memberships,
                {"user_id": m.user_id, "team_id": m.team_id},
                {"role": m.role.value},
            )
            await _bump(conn, t.KEYS_VERSION)

    async def remove_membership(self, user_id: str, team_id: str) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                delete(t.memberships).where(
                    t.memberships.c.user_id == user_id, t.memberships.c.team_id == team_id
                )
            )
            await _bump(conn, t.KEYS_VERSION)
        return bool(result.rowcount)

    async def set_org_role(self, m: OrgMembership) -> None:
        async with self._db.begin() as conn:
            await _upsert(
                conn,
                t.org_roles,
                {"user_id": m.user_id, "org_id": m.org_id},
                {"role": m.role.value},
            )
            await _bump(conn, t.KEYS_VERSION)

    # service accounts
    async def create_service_account(self, sa: ServiceAccount) -> None:
        await self._write(
            t.service_accounts.insert().values(
                id=sa.id, team_id=sa.team_id, name=sa.name, created_at=_dt(sa.created_at)
            )
        )

    async def delete_service_account(self, sa_id: str) -> None:
        await self._write(delete(t.service_accounts).where(t.service_accounts.c.id == sa_id))

    async def directory(self) -> Directory:
        async with self._db.connect() as conn:
            orgs = [
                _org(r) for r in await conn.execute(select(t.orgs).order_by(t.orgs.c.created_at))
            ]
            teams = [
                _team(r) for r in await conn.execute(select(t.teams).order_by(t.teams.c.created_at))
            ]
            users = [
                _user(r) for r in await conn.execute(select(t.users).order_by(t.users.c.created_at))
            ]
            members = [
                Membership(r.user_id, r.team_id, TeamRole(r.role))
                for r in await conn.execute(select(t.memberships))
            ]
            roles = [
                OrgMembership(r.user_id, r.org_id, OrgRole(r.role))
                for r in await conn.execute(select(t.org_roles))
            ]
            sas = [
                ServiceAccount(r.id, r.team_id, r.name, _created(r))
                for r in await conn.execute(
                    select(t.service_accounts).order_by(t.service_accounts.c.created_at)
                )
            ]
        return Directory(orgs, teams, users, members, roles, sas)

    # audit log
    async def audit(self, entry: AuditEntry) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                t.audit_log.insert().values(
                    at=_dt(entry.at),
                    actor=entry.actor,
                    action=entry.action,
                    target_type=entry.target_type,
                    target_id=entry.target_id,
                    org_id=entry.org_id,
                    before=entry.before,
                    after=entry.after,
                )
            )

    async def audit_entries(
        self,
        *,
        org_id: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        where: AuditFilter | None = None,
    ) -> list[AuditEntry]:
        log = t.audit_log
        query = select(log).order_by(log.c.id.desc()).limit(limit)
        if org_id is not None:
            query = query.where(log.c.org_id == org_id)
        if before_id is not None:
            query = query.where(log.c.id < before_id)
        if where is not None:
            query = query.where(*_audit_where(where))
        async with self._db.connect() as conn:
            rows = await conn.execute(query)
            out = []
            for r in rows:
                at = _ts(r.at)
                assert at is not None
                out.append(
                    AuditEntry(
                        at,
                        r.actor,
                        r.action,
                        r.target_type,
                        r.target_id,
                        r.org_id,
                        r.before,
                        r.after,
                        r.id,
                    )
                )
        return out


def _audit_where(f: AuditFilter) -> list[Any]:
    log = t.audit_log
    out: list[Any] = []
    if f.actor is not None:
        out.append(log.c.actor == f.actor)
    if f.action is not None:
        if f.action.endswith("."):
            out.append(log.c.action.startswith(f.action, autoescape=True))
        else:
            out.append(log.c.action == f.action)
    if f.target_id is not None:
        out.append(log.c.target_id == f.target_id)
    if f.start is not None:
        out.append(log.c.at >= _dt(f.start))
    if f.end is not None:
        out.append(log.c.at < _dt(f.end))
    return out


def _team_insert(team: Team) -> Any:
    return t.teams.insert().values(
        id=team.id,
        org_id=team.org_id,
        name=team.name,
        managed_by=team.managed_by,
        created_at=_dt(team.created_at),
        **_gov_values(team.governance),
    )


async def _upsert(
    conn: AsyncConnection, table: Table, key: dict[str, Any], values: dict[str, Any]
) -> None:
    clause = [table.c[name] == value for name, value in key.items()]
    result = await conn.execute(update(table).where(*clause).values(**values))
    if not result.rowcount:
        await conn.execute(table.insert().values(**key, **values))
