"""Tenancy operations with their authorization rules and audit trail.

Every mutation is checked against the actor (``rules``), then written together with its audit
entry (who, what, when, before/after; key hashes never appear) in one unit of work, so a
failure leaves neither; only after the commit is this process's key cache reloaded (other
processes follow through the change counter or Redis).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any

import orjson

from sluice.auth.keys import KeyRecord
from sluice.auth.principal import Principal
from sluice.budgets.spec import stored_budget
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError
from sluice.limits.settings import stored_limits
from sluice.storage.base import KeyRepository, MetaRepository, TenancyRepository, Unit
from sluice.tenancy import bounds, rules
from sluice.tenancy.audit import snapshot
from sluice.tenancy.model import (
    AuditEntry,
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

GLOBAL_GOVERNANCE = "global_governance"
KEYS_VERSION = "keys_version"


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(8).hex()}"


class Tenancy:
    def __init__(
        self,
        repo: TenancyRepository,
        keys: KeyRepository,
        meta: MetaRepository,
        *,
        unit: Callable[[], AbstractAsyncContextManager[Unit]],
        clock: Clock,
        changed: Callable[[], Awaitable[None]],
        default_max_keys: int = 20,
    ) -> None:
        """``unit``: opens a unit of work (``Storage.unit``); ``repo``, ``keys`` and ``meta``
        are for reads (and writes that need no audit entry)."""
        self.repo = repo
        self._unit = unit
        self.keys = keys
        self._meta = meta
        self._clock = clock
        self._changed = changed
        self.default_max_keys = default_max_keys

    def entry(
        self,
        actor: Principal,
        action: str,
        target: tuple[str, str],
        *,
        org_id: str | None,
        before: Any = None,
        after: Any = None,
    ) -> AuditEntry:
        """The audit entry of a change (``target``: type and id), stamped now."""
        return AuditEntry(
            at=self._clock.now(),
            actor=actor.user_id or actor.key_id,
            action=action,
            target_type=target[0],
            target_id=target[1],
            org_id=org_id,
            before=snapshot(before) if before is not None else None,
            after=snapshot(after) if after is not None else None,
        )

    @asynccontextmanager
    async def change(self, entry: AuditEntry) -> AsyncIterator[Unit]:
        """A unit of work that has staged ``entry``: write the change through the unit it
        gives; both commit when the block ends, neither when it raises. Then (never before
        the commit) the key cache is reloaded and other processes told."""
        async with self._unit() as unit:
            await unit.tenancy.audit(entry)
            yield unit
        await self._changed()

    def changing(
        self,
        actor: Principal,
        action: str,
        target: tuple[str, str],
        *,
        org_id: str | None = None,
        before: Any = None,
        after: Any = None,
    ) -> AbstractAsyncContextManager[Unit]:
        """:meth:`change` with the entry built by :meth:`entry`."""
        return self.change(
            self.entry(actor, action, target, org_id=org_id, before=before, after=after)
        )

    async def directory(self) -> Directory:
        return await self.repo.directory()

    # global caps -------------------------------------------------------------------------
    async def global_governance(self) -> Governance:
        raw = await self._meta.get(GLOBAL_GOVERNANCE)
        if raw is None:
            return Governance()
        data = orjson.loads(raw)
        return Governance(
            tuple(data["models"]) if data.get("models") is not None else None,
            tuple(data.get("models_exclude") or ()),
            stored_limits(data.get("limits")),
            stored_budget(data.get("budget")),
        )

    async def set_global_governance(self, actor: Principal, gov: Governance) -> Governance:
        if not actor.is_admin:
            raise rules.forbidden("only admins change global limits and model access")
        before = await self.global_governance()
        bounds.check_governance(gov, before=before)
        async with self.changing(
            actor, "global.update", ("global", "global"), org_id=None, before=before, after=gov
        ) as unit:
            await unit.meta.put(
                GLOBAL_GOVERNANCE, orjson.dumps(gov.to_json()).decode(), bump=KEYS_VERSION
            )
        return gov

    # organisations -----------------------------------------------------------------------
    async def create_org(self, actor: Principal, name: str, gov: Governance) -> Org:
        if not actor.is_admin:
            raise rules.forbidden("only admins create organisations")
        bounds.check_name(name, param="name")
        bounds.check_governance(gov)
        now = self._clock.now()
        org = Org(new_id("org"), name, now, None, gov)
        team = Team(new_id("team"), org.id, "default", now)
        org = replace(org, default_team_id=team.id)
        async with self.changing(
            actor, "org.create", ("org", org.id), org_id=org.id, after=org
        ) as u:
            await _unique(u.tenancy.create_org(org, team), "organisation", name)
        return org

    async def visible_org(self, actor: Principal, org_id: str) -> Org:
        org = await self.repo.get_org(org_id)
        if org is None or not rules.sees_org(actor, org_id, await self._member_orgs(actor)):
            raise rules.not_found("organisation", org_id)
        return org

    async def _member_orgs(self, actor: Principal) -> frozenset[str]:
        if not actor.teams:
            return frozenset()
        directory = await self.repo.directory()
        return frozenset(t.org_id for t in directory.teams if t.id in actor.teams)

    async def list_orgs(self, actor: Principal) -> list[Org]:
        directory = await self.repo.directory()
        member = frozenset(t.org_id for t in directory.teams if t.id in actor.teams)
        return [o for o in directory.orgs if rules.sees_org(actor, o.id, member)]

    async def update_org(
        self, actor: Principal, org_id: str, *, name: str | None, gov: Governance
    ) -> Org:
        org = await self.visible_org(actor, org_id)
        if not rules.is_org_admin(actor, org_id):
            raise rules.forbidden("only admins and this organisation's admins change it")
        if name is not None:
            bounds.check_name(name, param="name")
        bounds.check_governance(gov, before=org.governance)
        if not actor.is_admin:
            if name is not None and name != org.name:
                raise rules.forbidden("only admins rename organisations")
            caps = await self.global_governance()
            rules.within(gov.limits, caps.limits, what="global limit")
            rules.budget_within(gov.budget, caps.budget, what="global budget")
        if name and name != org.name:
            directory = await self.repo.directory()
            if any(o.name == name for o in directory.orgs):
                raise _conflict("organisation", name)
        updated = replace(org, name=name or org.name, governance=gov)
        async with self.changing(
            actor, "org.update", ("org", org_id), org_id=org_id, before=org, after=updated
        ) as unit:
            await unit.tenancy.update_org(updated)
        return updated

    async def set_org_admin(self, actor: Principal, org_id: str, user_id: str, admin: bool) -> None:
        await self.visible_org(actor, org_id)
        if not actor.is_admin:
            raise rules.forbidden("only admins grant or take the org-admin role")
        if await self.repo.get_user(user_id) is None:
            raise rules.not_found("user", user_id)
        role = OrgRole.ADMIN if admin else OrgRole.MEMBER
        async with self.changing(
            actor,
            "org.admin" if admin else "org.admin_remove",
            ("user", user_id),
            org_id=org_id,
            after={"role": role.value},
        ) as unit:
            await unit.tenancy.set_org_role(OrgMembership(user_id, org_id, role))

    # teams -------------------------------------------------------------------------------
    async def create_team(self, actor: Principal, org_id: str, name: str, gov: Governance) -> Team:
        org = await self.visible_org(actor, org_id)
        if not rules.is_org_admin(actor, org_id):
            raise rules.forbidden("only admins and this organisation's admins create teams")
        bounds.check_name(name, param="name")
        bounds.check_governance(gov)
        rules.within(gov.limits, org.governance.limits, what="organisation")
        rules.budget_within(gov.budget, org.governance.budget, what="organisation")
        team = Team(new_id("team"), org_id, name, self._clock.now(), gov)
        async with self.changing(
            actor, "team.create", ("team", team.id), org_id=org_id, after=team
        ) as unit:
            await _unique(unit.tenancy.create_team(team), "team", name)
        return team

    async def visible_team(self, actor: Principal, team_id: str) -> Team:
        team = await self.repo.get_team(team_id)
        if team is None or not rules.sees_team(actor, team):
            raise rules.not_found("team", team_id)
        return team

    async def list_teams(self, actor: Principal) -> list[Team]:
        directory = await self.repo.directory()
        return [t for t in directory.teams if rules.sees_team(actor, t)]

    async def update_team(
        self, actor: Principal, team_id: str, *, name: str | None, gov: Governance
    ) -> Team:
        team = await self.visible_team(actor, team_id)
        if not rules.is_team_admin(actor, team):
            raise rules.forbidden("only this team's admins change it")
        if name is not None:
            bounds.check_name(name, param="name")
        bounds.check_governance(gov, before=team.governance)
        if not actor.is_admin:
            org = await self.repo.get_org(team.org_id)
            caps = org.governance if org else Governance()
            rules.within(gov.limits, caps.limits, what="organisation")
            rules.budget_within(gov.budget, caps.budget, what="organisation")
        if name and name != team.name:
            directory = await self.repo.directory()
            if any(t.org_id == team.org_id and t.name == name for t in directory.teams):
                raise _conflict("team", name)
        updated = replace(team, name=name or team.name, governance=gov)
        async with self.changing(
            actor, "team.update", ("team", team_id), org_id=team.org_id, before=team, after=updated
        ) as unit:
            await unit.tenancy.update_team(updated)
        return updated

    async def members(self, actor: Principal, team_id: str) -> list[Membership]:
        await self.visible_team(actor, team_id)
        directory = await self.repo.directory()
        return [m for m in directory.memberships if m.team_id == team_id]

    async def set_member(
        self, actor: Principal, team_id: str, user_id: str, role: TeamRole
    ) -> Membership:
        team = await self.visible_team(actor, team_id)
        if not rules.is_team_admin(actor, team):
            raise rules.forbidden("only this team's admins manage its members")
        user = await self.repo.get_user(user_id)
        if user is None or not await self.may_see_user(actor, user):
            raise rules.not_found("user", user_id)
        membership = Membership(user_id, team_id, role)
        async with self.changing(
            actor, "team.member", ("user", user_id), org_id=team.org_id, after=membership
        ) as unit:
            await unit.tenancy.set_membership(membership)
        return membership

    async def remove_member(self, actor: Principal, team_id: str, user_id: str) -> None:
        team = await self.visible_team(actor, team_id)
        if not rules.is_team_admin(actor, team):
            raise rules.forbidden("only this team's admins manage its members")
        async with self.changing(
            actor, "team.member_remove", ("user", user_id), org_id=team.org_id
        ) as unit:
            if not await unit.tenancy.remove_membership(user_id, team_id):
                raise rules.not_found("member", user_id)

    # users -------------------------------------------------------------------------------
    async def may_see_user(
        self, actor: Principal, user: User, directory: Directory | None = None
    ) -> bool:
        """``directory``: pass one already loaded when asking about many users."""
        if actor.is_admin or actor.user_id == user.id:
            return True
        directory = directory or await self.repo.directory()
        teams = {t.id: t for t in directory.teams}
        user_teams = [
            teams[m.team_id]
            for m in directory.memberships
            if m.user_id == user.id and m.team_id in teams
        ]
        user_orgs = {t.org_id for t in user_teams}
        # Org admins see their orgs' users; team admins see their teams' members. A user who is
        # in no team yet is visible to every org admin (so they can add them).
        if actor.org_admin_of and (not user_teams or user_orgs & actor.org_admin_of):
            return True
        return any(t.id in actor.team_admin_of for t in user_teams)

    async def create_user(
        self,
        actor: Principal,
        *,
        email: str,
        name: str,
        org_id: str | None,
        team_id: str | None,
        max_keys: int | None,
        gov: Governance,
        password_hash: str | None = None,
    ) -> User:
        """``password_hash``: the console password, stored with the user."""
        bounds.check_name(email, param="email", max_chars=320)
        bounds.check_name(name, param="name")
        bounds.check_count(max_keys, param="max_keys", maximum=bounds.MAX_KEYS_MAX)
        bounds.check_governance(gov)
        team: Team | None = None
        if team_id is not None:
            team = await self.visible_team(actor, team_id)
            org_id = team.org_id
        elif org_id is not None:
            org = await self.visible_org(actor, org_id)
            team = await self.repo.get_team(org.default_team_id or "")
        if not actor.is_admin and (org_id is None or org_id not in actor.org_admin_of):
            raise rules.forbidden(
                "only admins, and org admins within their organisation, create users"
            )
        if await self.repo.user_by_email(email) is not None:
            raise _conflict("user", email)
        user = User(new_id("user"), email, name, self._clock.now(), False, False, max_keys, gov)
        membership = Membership(user.id, team.id, TeamRole.MEMBER) if team is not None else None
        async with self.changing(
            actor, "user.create", ("user", user.id), org_id=org_id, after=user
        ) as unit:
            await _unique(unit.tenancy.create_user(user, membership), "user", email)
            if password_hash is not None:
                await unit.console.set_password_hash(user.id, password_hash)
        return user

    async def set_password(self, actor: Principal, user_id: str, password_hash: str) -> None:
        """Store a user's console password (hash) and end their sessions, audited, in one
        unit. Who may do it is the caller's check (the user, or an admin)."""
        async with self.changing(actor, "user.password", ("user", user_id)) as unit:
            if not await unit.console.set_password_hash(user_id, password_hash):
                raise rules.not_found("user", user_id)
            await unit.console.delete_user_sessions(user_id)

    async def visible_user(self, actor: Principal, user_id: str) -> User:
        user = await self.repo.get_user(user_id)
        if user is None or not await self.may_see_user(actor, user):
            raise rules.not_found("user", user_id)
        return user

    async def list_users(self, actor: Principal) -> list[User]:
        directory = await self.repo.directory()
        return [u for u in directory.users if await self.may_see_user(actor, u, directory)]

    async def update_user(
        self,
        actor: Principal,
        user_id: str,
        *,
        name: str | None,
        disabled: bool | None,
        max_keys: int | None,
        fields: set[str],
        gov: Governance,
    ) -> User:
        user = await self.visible_user(actor, user_id)
        self_service = actor.user_id == user_id and not actor.is_admin
        governs = actor.is_admin or (
            bool(actor.org_admin_of) and not user.is_admin and await self.may_see_user(actor, user)
        )
        if not governs and not (self_service and fields <= {"name"}):
            raise rules.forbidden("only admins and org admins change this user")
        if name is not None:
            bounds.check_name(name, param="name")
        if "max_keys" in fields:
            bounds.check_count(max_keys, param="max_keys", maximum=bounds.MAX_KEYS_MAX)
        bounds.check_governance(gov, before=user.governance)
        updated = replace(
            user,
            name=name or user.name,
            disabled=user.disabled if disabled is None else disabled,
            max_keys=max_keys if "max_keys" in fields else user.max_keys,
            governance=gov,
        )
        async with self.changing(
            actor, "user.update", ("user", user_id), org_id=None, before=user, after=updated
        ) as unit:
            await unit.tenancy.update_user(updated)
            if updated.disabled and not user.disabled:  # signed out everywhere at once
                await unit.console.delete_user_sessions(user_id)
        return updated

    async def set_admin(self, actor: Principal, user_id: str, admin: bool) -> User:
        if not actor.is_admin:
            raise rules.forbidden("only admins grant or take the admin role")
        user = await self.visible_user(actor, user_id)
        updated = replace(user, is_admin=admin)
        async with self.changing(
            actor, "user.admin", ("user", user_id), org_id=None, before=user, after=updated
        ) as unit:
            await unit.tenancy.update_user(updated)
        return updated

    # service accounts --------------------------------------------------------------------
    async def create_service_account(
        self, actor: Principal, team_id: str, name: str
    ) -> ServiceAccount:
        team = await self.visible_team(actor, team_id)
        if not rules.is_team_admin(actor, team):
            raise rules.forbidden("only this team's admins create service accounts")
        bounds.check_name(name, param="name")
        sa = ServiceAccount(new_id("sa"), team_id, name, self._clock.now())
        async with self.changing(
            actor,
            "service_account.create",
            ("service_account", sa.id),
            org_id=team.org_id,
            after=sa,
        ) as unit:
            await _unique(unit.tenancy.create_service_account(sa), "service account", name)
        return sa

    async def service_accounts(self, actor: Principal, team_id: str) -> list[ServiceAccount]:
        await self.visible_team(actor, team_id)
        directory = await self.repo.directory()
        return [s for s in directory.service_accounts if s.team_id == team_id]

    async def delete_service_account(self, actor: Principal, sa_id: str) -> None:
        directory = await self.repo.directory()
        sa = next((s for s in directory.service_accounts if s.id == sa_id), None)
        team = next((t for t in directory.teams if sa and t.id == sa.team_id), None)
        if sa is None or team is None or not rules.sees_team(actor, team):
            raise rules.not_found("service account", sa_id)
        if not rules.is_team_admin(actor, team):
            raise rules.forbidden("only this team's admins delete service accounts")
        now = self._clock.now()
        live = [
            r.id
            for r in await self.keys.list()
            if r.service_account_id == sa_id and r.revoked_at is None
        ]
        # The keys are revoked in the same unit: never a deleted account with live keys.
        async with self.changing(
            actor,
            "service_account.delete",
            ("service_account", sa_id),
            org_id=team.org_id,
            before=sa,
            after={"revoked_keys": live},
        ) as unit:
            for key_id in live:
                await unit.keys.revoke(key_id, at=now)
            await unit.tenancy.delete_service_account(sa_id)

    # audit -------------------------------------------------------------------------------
    async def audit_entries(
        self, actor: Principal, *, org_id: str | None, limit: int, before_id: int | None
    ) -> list[AuditEntry]:
        if actor.is_admin:
            return await self.repo.audit_entries(org_id=org_id, limit=limit, before_id=before_id)
        if org_id is None or org_id not in actor.org_admin_of:
            raise rules.forbidden("admins see the whole audit log; org admins pass their org_id")
        return await self.repo.audit_entries(org_id=org_id, limit=limit, before_id=before_id)

    async def audit_event(
        self,
        actor: Principal,
        action: str,
        target: tuple[str, str],
        *,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Write an audit entry on its own (values already masked): for an operation that is
        deliberately not one transaction (a dead-letter replay stores each row on its own).
        A change writes its entry in its own unit instead (:meth:`changing`)."""
        async with self.changing(actor, action, target, org_id=None, after=after):
            pass

    def audit_key(
        self,
        actor: Principal,
        action: str,
        record: KeyRecord,
        *,
        before: KeyRecord | None = None,
        org_id: str | None = None,
    ) -> AbstractAsyncContextManager[Unit]:
        """:meth:`change` for a key: write the key through the unit it gives."""
        return self.changing(
            actor, action, ("key", record.id), org_id=org_id, before=before, after=record
        )


async def _unique(write: Awaitable[None], kind: str, name: str) -> None:
    """Run ``write``; a refusal (the name is taken) is a 409. The unit rolls back."""
    try:
        await write
    except Exception as exc:
        raise _conflict(kind, name) from exc


def _conflict(kind: str, name: str) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_BAD_REQUEST,
        f"a {kind} named {name!r} already exists",
        status=409,
        code="conflict",
    )
