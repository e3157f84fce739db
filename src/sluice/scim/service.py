"""SCIM use cases over the tenancy service: list, read, create, replace, patch and delete
the users and teams (groups) of the one organisation ``auth.scim.org`` names.

Every change is one tenancy unit of work with its audit entry; the actor is the SCIM
principal ``scim:<org>``. Deactivating a user (``active: false``) or deleting them disables
the user, revokes every key they own and ends their console sessions in that same unit.
Reactivating enables the user again; revoked keys stay revoked (new ones must be made).
SCIM does not change Sluice admins (403): the provisioning token is scoped to one org.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.scim import patch, resources
from sluice.scim.errors import ScimError, invalid_value, not_found, uniqueness
from sluice.scim.filter import matches, parse_filter
from sluice.scim.resources import GroupInput, UserInput
from sluice.scim.store import GroupLink, ScimRepository, UserLink
from sluice.storage.base import Unit
from sluice.tenancy.changes import new_id, unique
from sluice.tenancy.model import Governance, Membership, Org, Team, TeamRole, User
from sluice.tenancy.service import Tenancy

COUNT_DEFAULT = 100
COUNT_MAX = 200


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    start: int
    resources: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _World:
    """The org as SCIM sees it, read once per request."""

    org: Org
    users: dict[str, User]
    """Members of the org's teams and users SCIM manages in it."""
    all_emails: dict[str, str]
    """Every user's e-mail (lower case) → id: ``userName`` is unique across orgs."""
    teams: dict[str, Team]
    members: dict[str, list[Membership]]
    """Team id → its memberships."""
    user_links: dict[str, UserLink]
    group_links: dict[str, GroupLink]


class ScimService:
    def __init__(self, tenancy: Tenancy, links: ScimRepository, *, org: str, clock: Clock) -> None:
        """``org``: the organisation's name (or id) from ``auth.scim.org``."""
        self._t = tenancy
        self._links = links
        self._org = org
        self._clock = clock

    # reading -------------------------------------------------------------------------------
    async def _world(self) -> _World:
        directory = await self._t.directory()
        org = next((o for o in directory.orgs if self._org in (o.name, o.id)), None)
        if org is None:
            raise ScimError(404, f"the organisation {self._org!r} (auth.scim.org) does not exist")
        teams = {t.id: t for t in directory.teams if t.org_id == org.id}
        members: dict[str, list[Membership]] = {t: [] for t in teams}
        for m in directory.memberships:
            if m.team_id in members:
                members[m.team_id].append(m)
        user_links = await self._links.user_links(org.id)
        in_org = {m.user_id for ms in members.values() for m in ms} | set(user_links)
        return _World(
            org,
            {u.id: u for u in directory.users if u.id in in_org},
            {u.email.lower(): u.id for u in directory.users},
            teams,
            members,
            user_links,
            await self._links.group_links(org.id),
        )

    def _actor(self, world: _World) -> Principal:
        return Principal(
            key_id=f"scim:{world.org.name}",
            name="SCIM provisioning",
            org_admin_of=frozenset({world.org.id}),
        )

    def _user_json(self, w: _World, user: User, base: str) -> dict[str, Any]:
        link = w.user_links.get(user.id)
        groups = [
            {"value": team_id, "display": w.teams[team_id].name, "$ref": f"{base}/Groups/{team_id}"}
            for team_id in w.group_links
            if team_id in w.teams and any(m.user_id == user.id for m in w.members[team_id])
        ]
        out: dict[str, Any] = {"schemas": [resources.USER_SCHEMA], "id": user.id}
        if link is not None and link.external_id:
            out["externalId"] = link.external_id
        out |= {
            "userName": user.email,
            "name": {**((link.name if link else None) or {}), "formatted": user.name},
            "displayName": user.name,
            "emails": [{"value": user.email, "type": "work", "primary": True}],
            "active": not user.disabled,
            "groups": groups,
        }
        return resources.with_meta(
            out,
            kind="User",
            created=user.created_at,
            modified=link.updated_at if link else user.created_at,
            location=f"{base}/Users/{user.id}",
        )

    def _group_json(self, w: _World, team: Team, base: str) -> dict[str, Any]:
        link = w.group_links[team.id]
        out: dict[str, Any] = {"schemas": [resources.GROUP_SCHEMA], "id": team.id}
        if link.external_id:
            out["externalId"] = link.external_id
        out["displayName"] = team.name
        out["members"] = [
            {
                "value": m.user_id,
                "display": w.users[m.user_id].email if m.user_id in w.users else m.user_id,
                "type": "User",
                "$ref": f"{base}/Users/{m.user_id}",
            }
            for m in w.members[team.id]
        ]
        return resources.with_meta(
            out,
            kind="Group",
            created=link.created_at,
            modified=link.updated_at,
            location=f"{base}/Groups/{team.id}",
        )

    async def list_users(self, *, base: str, filter: str | None, start: int, count: int) -> Page:
        w = await self._world()
        found = [self._user_json(w, u, base) for u in w.users.values()]
        return _page(found, filter, resources.USER_ATTRIBUTES, start, count)

    async def list_groups(self, *, base: str, filter: str | None, start: int, count: int) -> Page:
        w = await self._world()
        teams = sorted(
            (w.teams[t] for t in w.group_links if t in w.teams), key=lambda t: t.created_at
        )
        found = [self._group_json(w, team, base) for team in teams]
        return _page(found, filter, resources.GROUP_ATTRIBUTES, start, count)

    async def get_user(self, user_id: str, *, base: str) -> dict[str, Any]:
        w = await self._world()
        return self._user_json(w, _user(w, user_id), base)

    async def get_group(self, group_id: str, *, base: str) -> dict[str, Any]:
        w = await self._world()
        return self._group_json(w, _group(w, group_id), base)

    async def provisioned_user(self, *, subject: str, verified_email: str | None) -> str | None:
        """For a first OIDC sign-in (``auth.oidc.provision``): the SCIM user whose
        ``externalId`` equals the IdP's ``sub``, else the one whose ``userName`` equals the
        IdP's verified e-mail (case-insensitively). Only users SCIM manages match."""
        w = await self._world()
        by_subject = next(
            (k.user_id for k in w.user_links.values() if k.external_id == subject), None
        )
        if by_subject is not None or verified_email is None:
            return by_subject
        user_id = w.all_emails.get(verified_email.lower())
        return user_id if user_id in w.user_links else None

    # users ---------------------------------------------------------------------------------
    async def create_user(self, body: Any, *, base: str) -> dict[str, Any]:
        given = resources.user_input(body)
        w = await self._world()
        self._unique_user(w, given, None)
        now = self._clock.now()
        user = User(new_id("user"), given.user_name, given.name, now, disabled=not given.active)
        team = w.org.default_team_id
        first = Membership(user.id, team, TeamRole.MEMBER) if team in w.teams else None
        async with self._t.changing(
            self._actor(w), "user.create", ("user", user.id), org_id=w.org.id, after=user
        ) as unit:
            await unique(unit.tenancy.create_user(user, first), "user", user.email)
            await unit.scim.put_user(
                UserLink(user.id, w.org.id, given.external_id, given.structured, now, now)
            )
        return await self.get_user(user.id, base=base)

    async def replace_user(self, user_id: str, body: Any, *, base: str) -> dict[str, Any]:
        w = await self._world()
        await self._write_user(w, _user(w, user_id), resources.user_input(body))
        return await self.get_user(user_id, base=base)

    async def patch_user(self, user_id: str, body: Any, *, base: str) -> dict[str, Any]:
        w = await self._world()
        user = _user(w, user_id)
        current = _writable(self._user_json(w, user, base))
        await self._write_user(w, user, resources.user_input(patch.apply(current, body)))
        return await self.get_user(user_id, base=base)

    def _unique_user(self, w: _World, given: UserInput, user_id: str | None) -> None:
        holder = w.all_emails.get(given.user_name.lower())
        if holder is not None and holder != user_id:
            raise uniqueness(f"userName {given.user_name!r} is taken")
        if given.external_id is not None and any(
            link.external_id == given.external_id and link.user_id != user_id
            for link in w.user_links.values()
        ):
            raise uniqueness(f"externalId {given.external_id!r} is taken")

    async def _write_user(self, w: _World, user: User, given: UserInput) -> None:
        _not_admin(user)
        self._unique_user(w, given, user.id)
        now = self._clock.now()
        updated = replace(user, email=given.user_name, name=given.name, disabled=not given.active)
        link = w.user_links.get(user.id)
        created = link.created_at if link else now
        new_link = UserLink(user.id, w.org.id, given.external_id, given.structured, created, now)
        if updated.disabled and not user.disabled:
            await self._deprovision(w, user, updated, new_link, action="user.deactivate")
            return
        action = "user.reactivate" if user.disabled and not updated.disabled else "user.update"
        async with self._t.changing(
            self._actor(w), action, ("user", user.id), org_id=w.org.id, before=user, after=updated
        ) as unit:
            await unique(unit.tenancy.update_user(updated), "user", updated.email)
            await unit.scim.put_user(new_link)

    async def delete_user(self, user_id: str) -> None:
        """Deprovision: disabled, keys revoked, sessions ended, out of the org's teams, no
        longer a SCIM resource. The user record stays (usage and audit history name it)."""
        w = await self._world()
        user = _user(w, user_id)
        _not_admin(user)
        await self._deprovision(
            w, user, replace(user, disabled=True), None, action="user.deprovision"
        )

    async def _deprovision(
        self, w: _World, user: User, updated: User, link: UserLink | None, *, action: str
    ) -> None:
        """``link``: the user's SCIM record afterwards (``None``: removed, with the user's
        memberships of the org's teams)."""
        now = self._clock.now()
        live = [
            k.id for k in await self._t.keys.list() if k.user_id == user.id and k.revoked_at is None
        ]
        teams = (
            []
            if link
            else [t for t, ms in w.members.items() if any(m.user_id == user.id for m in ms)]
        )
        after = {"user": updated, "revoked_keys": live, "left_teams": teams}
        async with self._t.changing(
            self._actor(w), action, ("user", user.id), org_id=w.org.id, before=user, after=after
        ) as unit:
            await unique(unit.tenancy.update_user(updated), "user", updated.email)
            for key_id in live:
                await unit.keys.revoke(key_id, at=now)
            await unit.console.delete_user_sessions(user.id)
            for team_id in teams:
                await unit.tenancy.remove_membership(user.id, team_id)
            if link is not None:
                await unit.scim.put_user(link)
            else:
                await unit.scim.delete_user(user.id)

    # groups --------------------------------------------------------------------------------
    async def create_group(self, body: Any, *, base: str) -> dict[str, Any]:
        """A group whose ``displayName`` names a team of the org that is no SCIM group yet
        (not the default team) takes that team over, its members set to the group's."""
        given = resources.group_input(body)
        w = await self._world()
        team = next((t for t in w.teams.values() if t.name == given.display_name), None)
        if team is not None and (team.id in w.group_links or team.id == w.org.default_team_id):
            raise uniqueness(f"a group named {given.display_name!r} exists")
        self._check_group(w, given, None)
        now = self._clock.now()
        made = team is None
        if team is None:
            team = Team(new_id("team"), w.org.id, given.display_name, now, Governance())
        link = GroupLink(team.id, w.org.id, given.external_id, now, now)
        action = "team.create" if made else "team.scim_link"
        after = {"team": team, "members": list(given.members)}
        async with self._t.changing(
            self._actor(w), action, ("team", team.id), org_id=w.org.id, after=after
        ) as unit:
            if made:
                await unique(unit.tenancy.create_team(team), "team", team.name)
            await _set_members(unit, team.id, w.members.get(team.id, []), given.members)
            await unit.scim.put_group(link)
        return await self.get_group(team.id, base=base)

    async def replace_group(self, group_id: str, body: Any, *, base: str) -> dict[str, Any]:
        w = await self._world()
        await self._write_group(w, _group(w, group_id), resources.group_input(body))
        return await self.get_group(group_id, base=base)

    async def patch_group(self, group_id: str, body: Any, *, base: str) -> dict[str, Any]:
        w = await self._world()
        team = _group(w, group_id)
        current = _writable(self._group_json(w, team, base))
        await self._write_group(w, team, resources.group_input(patch.apply(current, body)))
        return await self.get_group(group_id, base=base)

    def _check_group(self, w: _World, given: GroupInput, team_id: str | None) -> None:
        for user_id in given.members:
            if user_id not in w.users:
                raise invalid_value(f"member {user_id[:64]!r} is not a user of this organisation")
        if given.external_id is not None and any(
            g.external_id == given.external_id and g.team_id != team_id
            for g in w.group_links.values()
        ):
            raise uniqueness(f"externalId {given.external_id!r} is taken")

    async def _write_group(self, w: _World, team: Team, given: GroupInput) -> None:
        self._check_group(w, given, team.id)
        if given.display_name != team.name and any(
            t.name == given.display_name for t in w.teams.values()
        ):
            raise uniqueness(f"a team named {given.display_name!r} exists")
        now = self._clock.now()
        old = w.group_links[team.id]
        updated = replace(team, name=given.display_name)
        before = {"team": team, "members": [m.user_id for m in w.members[team.id]]}
        after = {"team": updated, "members": list(given.members)}
        async with self._t.changing(
            self._actor(w),
            "team.update",
            ("team", team.id),
            org_id=w.org.id,
            before=before,
            after=after,
        ) as unit:
            if updated.name != team.name:
                await unique(unit.tenancy.update_team(updated), "team", updated.name)
            await _set_members(unit, team.id, w.members[team.id], given.members)
            await unit.scim.put_group(replace(old, external_id=given.external_id, updated_at=now))

    async def delete_group(self, group_id: str) -> None:
        """The team loses its members and stops being a SCIM group; it stays, with its keys,
        service accounts, budgets and usage history, for admins to keep or remove."""
        w = await self._world()
        team = _group(w, group_id)
        members = [m.user_id for m in w.members[team.id]]
        async with self._t.changing(
            self._actor(w),
            "team.scim_unlink",
            ("team", team.id),
            org_id=w.org.id,
            before={"team": team, "members": members},
        ) as unit:
            for user_id in members:
                await unit.tenancy.remove_membership(user_id, team.id)
            await unit.scim.delete_group(team.id)


async def _set_members(
    unit: Unit, team_id: str, current: list[Membership], wanted: tuple[str, ...]
) -> None:
    """Make the team's members exactly ``wanted``; members who stay keep their role."""
    have = {m.user_id for m in current}
    for user_id in have - set(wanted):
        await unit.tenancy.remove_membership(user_id, team_id)
    for user_id in wanted:
        if user_id not in have:
            await unit.tenancy.set_membership(Membership(user_id, team_id, TeamRole.MEMBER))


def _user(w: _World, user_id: str) -> User:
    user = w.users.get(user_id)
    if user is None:
        raise not_found("User", user_id)
    return user


def _group(w: _World, group_id: str) -> Team:
    if group_id not in w.group_links or group_id not in w.teams:
        raise not_found("Group", group_id)
    return w.teams[group_id]


def _not_admin(user: User) -> None:
    if user.is_admin:
        raise ScimError(403, f"{user.email} is a Sluice admin; SCIM does not change admins")


def _writable(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in patch.READ_ONLY}


def _page(
    found: list[dict[str, Any]],
    filter: str | None,
    attributes: frozenset[str],
    start: int,
    count: int,
) -> Page:
    if filter:
        node = parse_filter(filter, attributes=attributes)
        found = [r for r in found if matches(r, node)]
    return Page(len(found), start, found[start - 1 : start - 1 + count])
