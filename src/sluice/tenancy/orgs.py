"""Global caps, organisations, teams and their members: the rules and the audited writes."""

from __future__ import annotations

from dataclasses import replace

import orjson

from sluice.auth.principal import Principal
from sluice.budgets.spec import stored_budget
from sluice.limits.settings import stored_limits
from sluice.tenancy import bounds, rules
from sluice.tenancy.changes import Changes, conflict, new_id, unique
from sluice.tenancy.model import (
    Directory,
    Governance,
    Membership,
    Org,
    OrgMembership,
    OrgRole,
    Team,
    TeamRole,
    User,
    stored_names,
)

GLOBAL_GOVERNANCE = "global_governance"
KEYS_VERSION = "keys_version"


class OrgsAndTeams(Changes):
    """Organisations and teams (the base of ``Tenancy``, which adds users)."""

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
            stored_names(data.get("mcp_servers")),
            stored_names(data.get("mcp_servers_exclude")) or (),
            stored_names(data.get("mcp_tools")),
            stored_names(data.get("mcp_tools_exclude")) or (),
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
            await unique(u.tenancy.create_org(org, team), "organisation", name)
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

    async def list_orgs(self, actor: Principal, *, archived: bool = False) -> list[Org]:
        """``archived``: include archived organisations."""
        directory = await self.repo.directory()
        member = frozenset(t.org_id for t in directory.teams if t.id in actor.teams)
        return [
            o
            for o in directory.orgs
            if rules.sees_org(actor, o.id, member) and (archived or o.archived_at is None)
        ]

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
                raise conflict("organisation", name)
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
        rules.live("organisation", org.name, org.archived_at)
        bounds.check_name(name, param="name")
        bounds.check_governance(gov)
        rules.within(gov.limits, org.governance.limits, what="organisation")
        rules.budget_within(gov.budget, org.governance.budget, what="organisation")
        team = Team(new_id("team"), org_id, name, self._clock.now(), gov)
        async with self.changing(
            actor, "team.create", ("team", team.id), org_id=org_id, after=team
        ) as unit:
            await unique(unit.tenancy.create_team(team), "team", name)
        return team

    async def visible_team(self, actor: Principal, team_id: str) -> Team:
        team = await self.repo.get_team(team_id)
        if team is None or not rules.sees_team(actor, team):
            raise rules.not_found("team", team_id)
        return team

    async def list_teams(self, actor: Principal, *, archived: bool = False) -> list[Team]:
        """``archived``: include archived teams."""
        directory = await self.repo.directory()
        return [
            t
            for t in directory.teams
            if rules.sees_team(actor, t) and (archived or t.archived_at is None)
        ]

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
                raise conflict("team", name)
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
        rules.live("team", team.name, team.archived_at)
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
