"""Tenancy operations with their authorization rules and audit trail: users and service
accounts here, organisations and teams in ``sluice.tenancy.orgs``, the audited unit of work
in ``sluice.tenancy.changes``."""

from __future__ import annotations

from dataclasses import replace

from sluice.auth.principal import Principal
from sluice.tenancy import bounds, rules
from sluice.tenancy.changes import conflict, new_id, unique
from sluice.tenancy.model import Governance, Membership, ServiceAccount, Team, TeamRole, User
from sluice.tenancy.orgs import OrgsAndTeams


class Tenancy(OrgsAndTeams):
    """Every tenancy use case: the admin API, the console and the CLI call these."""

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
        bounds.check_email(email)
        bounds.check_name(name, param="name")
        bounds.check_count(max_keys, param="max_keys", maximum=bounds.MAX_KEYS_MAX)
        bounds.check_governance(gov)
        team: Team | None = None
        if team_id is not None:
            team = await self.visible_team(actor, team_id)
            rules.live("team", team.name, team.archived_at)
            org_id = team.org_id
        elif org_id is not None:
            org = await self.visible_org(actor, org_id)
            rules.live("organisation", org.name, org.archived_at)
            team = await self.repo.get_team(org.default_team_id or "")
        if not actor.is_admin and (org_id is None or org_id not in actor.org_admin_of):
            raise rules.forbidden(
                "only admins, and org admins within their organisation, create users"
            )
        if await self.repo.user_by_email(email) is not None:
            raise conflict("user", email)
        user = User(new_id("user"), email, name, self._clock.now(), False, False, max_keys, gov)
        membership = Membership(user.id, team.id, TeamRole.MEMBER) if team is not None else None
        async with self.changing(
            actor, "user.create", ("user", user.id), org_id=org_id, after=user
        ) as unit:
            await unique(unit.tenancy.create_user(user, membership), "user", email)
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

    async def list_users(self, actor: Principal, *, archived: bool = False) -> list[User]:
        """``archived``: include archived users."""
        directory = await self.repo.directory()
        return [
            u
            for u in directory.users
            if (archived or u.archived_at is None) and await self.may_see_user(actor, u, directory)
        ]

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
        rules.live("team", team.name, team.archived_at)
        bounds.check_name(name, param="name")
        sa = ServiceAccount(new_id("sa"), team_id, name, self._clock.now())
        async with self.changing(
            actor,
            "service_account.create",
            ("service_account", sa.id),
            org_id=team.org_id,
            after=sa,
        ) as unit:
            await unique(unit.tenancy.create_service_account(sa), "service account", name)
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
