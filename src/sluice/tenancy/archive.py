"""Archiving organisations, teams and users: the tenancy's "delete".

Nothing is removed: usage rows, audit entries and keys keep pointing at the archived row, so
names still resolve in the usage and audit pages. Archiving revokes the keys that bill the
archived scope (a team's keys, its service accounts' keys; an organisation's teams' keys; a
user's personal keys) in the same audited unit, hides the row from default lists, and refuses
new keys, teams and members under it. An archived user is also disabled and signed out.
"""

from __future__ import annotations

from dataclasses import replace

from sluice.auth.keys import KeyRecord
from sluice.auth.principal import Principal
from sluice.errors import BadRequest
from sluice.tenancy import rules
from sluice.tenancy.model import Directory, Org, Team, User
from sluice.tenancy.service import Tenancy


def _team_key_ids(directory: Directory, team_ids: set[str], records: list[KeyRecord]) -> list[str]:
    """The live keys that bill one of ``team_ids`` or belong to one of their service
    accounts."""
    sas = {s.id for s in directory.service_accounts if s.team_id in team_ids}
    return [
        r.id
        for r in records
        if r.revoked_at is None and (r.team_id in team_ids or r.service_account_id in sas)
    ]


class Archive:
    """Archive use cases over a :class:`Tenancy` (the admin API, console and CLI call these)."""

    def __init__(self, tenancy: Tenancy) -> None:
        self._t = tenancy

    async def org(self, actor: Principal, org_id: str) -> Org:
        """Admins only: the organisation and all its teams; their keys are revoked."""
        org = await self._t.visible_org(actor, org_id)
        if not actor.is_admin:
            raise rules.forbidden("only admins archive organisations")
        if org.archived_at is not None:
            return org
        now = self._t.now()
        directory = await self._t.directory()
        teams = [t for t in directory.teams if t.org_id == org_id and t.archived_at is None]
        revoked = _team_key_ids(directory, {t.id for t in teams}, await self._t.keys.list())
        archived = replace(org, archived_at=now)
        async with self._t.changing(
            actor,
            "org.archive",
            ("org", org_id),
            org_id=org_id,
            before=org,
            after={"archived_at": now, "teams": [t.id for t in teams], "revoked_keys": revoked},
        ) as unit:
            await unit.tenancy.update_org(archived)
            for team in teams:
                await unit.tenancy.update_team(replace(team, archived_at=now))
            for key_id in revoked:
                await unit.keys.revoke(key_id, at=now)
        return archived

    async def team(self, actor: Principal, team_id: str) -> Team:
        """Admins and the organisation's admins; the team's keys (members' keys that bill it,
        its service accounts' keys) are revoked."""
        team = await self._t.visible_team(actor, team_id)
        if not rules.is_org_admin(actor, team.org_id):
            raise rules.forbidden("only admins and this organisation's admins archive teams")
        if team.archived_at is not None:
            return team
        org = await self._t.repo.get_org(team.org_id)
        if org is not None and org.default_team_id == team_id and org.archived_at is None:
            raise BadRequest(
                "the organisation's default team is archived with the organisation",
                param="team_id",
            )
        now = self._t.now()
        directory = await self._t.directory()
        revoked = _team_key_ids(directory, {team_id}, await self._t.keys.list())
        archived = replace(team, archived_at=now)
        async with self._t.changing(
            actor,
            "team.archive",
            ("team", team_id),
            org_id=team.org_id,
            before=team,
            after={"archived_at": now, "revoked_keys": revoked},
        ) as unit:
            await unit.tenancy.update_team(archived)
            for key_id in revoked:
                await unit.keys.revoke(key_id, at=now)
        return archived

    async def user(self, actor: Principal, user_id: str) -> User:
        """Admins, and org admins for the (non-admin) users of their organisations: the user is
        disabled and signed out, their personal keys revoked."""
        user = await self._t.visible_user(actor, user_id)
        if actor.user_id == user_id:
            raise rules.forbidden("you cannot archive yourself")
        governs = actor.is_admin or (bool(actor.org_admin_of) and not user.is_admin)
        if not governs:
            raise rules.forbidden("only admins and org admins archive users")
        if user.archived_at is not None:
            return user
        now = self._t.now()
        revoked = [
            r.id for r in await self._t.keys.list() if r.user_id == user_id and r.revoked_at is None
        ]
        archived = replace(user, archived_at=now, disabled=True)
        async with self._t.changing(
            actor,
            "user.archive",
            ("user", user_id),
            before=user,
            after={"archived_at": now, "revoked_keys": revoked},
        ) as unit:
            await unit.tenancy.update_user(archived)
            for key_id in revoked:
                await unit.keys.revoke(key_id, at=now)
            await unit.console.delete_user_sessions(user_id)
        return archived
