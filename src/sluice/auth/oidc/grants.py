"""Apply a sign-in's :class:`~sluice.auth.oidc.mapping.Plan`: global admin, org admin and
team memberships granted by the groups, and taken back when the groups stop granting them
(only grants this IdP made: ``Grants`` remembers them). Every change of one sign-in is one
audited unit of work (``sso.provision``), so the change, its audit entry and the identity's
record of what it now holds commit together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sluice.auth.oidc.mapping import Plan
from sluice.auth.principal import Principal
from sluice.storage.base import Grants, IdentityRepository, Unit
from sluice.tenancy.changes import new_id, unique
from sluice.tenancy.model import (
    Directory,
    Membership,
    Org,
    OrgMembership,
    OrgRole,
    Team,
    TeamRole,
    User,
)

Record = Callable[[IdentityRepository, Grants], Awaitable[None]]
"""Write the sign-in on the identity (what the groups hold after it) through the repository
it is given."""


class Changing(Protocol):
    """The audited unit of work of the tenancy service (``Changes.changing``)."""

    def changing(
        self,
        actor: Principal,
        action: str,
        target: tuple[str, str],
        *,
        org_id: str | None = None,
        before: Any = None,
        after: Any = None,
    ) -> AbstractAsyncContextManager[Unit]: ...


@dataclass(slots=True)
class _Steps:
    """One sign-in: what it starts from, the writes it needs, what the IdP holds after."""

    user: User
    plan: Plan
    before: Grants
    directory: Directory
    writes: list[Callable[[Unit], Awaitable[Any]]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    admin: bool = False
    org_admin: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)


async def apply(
    changes: Changing,
    actor: Principal,
    *,
    user: User,
    org: Org | None,
    plan: Plan,
    before: Grants,
    directory: Directory,
    now: float,
    record: Record,
    identities: IdentityRepository,
) -> Grants:
    """Bring ``user``'s roles and IdP teams in line with ``plan``, and ``record`` the sign-in;
    the grants held after. When something changes, ``record`` writes through the unit of work
    (``unit.identities``): roles are never granted that the identity does not remember; else
    through ``identities``, on its own."""
    steps = _Steps(user, plan, before, directory)
    _admin(steps)
    if org is not None:
        _org_admin(steps, org)
        _teams(steps, org, now)
    _leave(steps)
    after = Grants(steps.admin, tuple(steps.org_admin), tuple(steps.teams))
    if steps.writes:
        async with changes.changing(
            actor,
            "sso.provision",
            ("user", user.id),
            org_id=org.id if org is not None else None,
            before=before.to_json(),
            after={**after.to_json(), "changes": steps.done, "plan": plan.to_json()},
        ) as unit:
            for write in steps.writes:
                await write(unit)
            await record(unit.identities, after)
    else:
        await record(identities, after)
    return after


def _write(steps: _Steps, done: str, write: Callable[[Unit], Awaitable[Any]]) -> None:
    steps.writes.append(write)
    steps.done.append(done)


def _admin(steps: _Steps) -> None:
    user, before = steps.user, steps.before
    if steps.plan.admin:
        steps.admin = before.admin or not user.is_admin
        if not user.is_admin:
            granted = replace(user, is_admin=True)
            _write(steps, "admin granted", lambda u: u.tenancy.update_user(granted))
    elif before.admin and user.is_admin:
        removed = replace(user, is_admin=False)
        _write(steps, "admin removed", lambda u: u.tenancy.update_user(removed))


def _role(role: OrgMembership) -> Callable[[Unit], Awaitable[Any]]:
    return lambda u: u.tenancy.set_org_role(role)


def _org_admin(steps: _Steps, org: Org) -> None:
    user = steps.user
    if not steps.plan.org_admin:
        return
    held = any(
        r.user_id == user.id and r.org_id == org.id and r.role is OrgRole.ADMIN
        for r in steps.directory.org_roles
    )
    if not held:
        role = OrgMembership(user.id, org.id, OrgRole.ADMIN)
        _write(steps, f"org admin of {org.name} granted", _role(role))
    if not held or org.id in steps.before.org_admin:
        steps.org_admin.append(org.id)


def _create_team(team: Team) -> Callable[[Unit], Awaitable[Any]]:
    """A 409 when another sign-in made the team first (the unit rolls back)."""
    return lambda u: unique(u.tenancy.create_team(team), "team", team.name)


def _join(m: Membership) -> Callable[[Unit], Awaitable[Any]]:
    return lambda u: u.tenancy.set_membership(m)


def _remove(user_id: str, team_id: str) -> Callable[[Unit], Awaitable[Any]]:
    return lambda u: u.tenancy.remove_membership(user_id, team_id)


def _teams(steps: _Steps, org: Org, now: float) -> None:
    user, idp = steps.user, steps.plan.idp
    in_org = {t.name: t for t in steps.directory.teams if t.org_id == org.id}
    member_of = {m.team_id for m in steps.directory.memberships if m.user_id == user.id}
    for name in steps.plan.teams:
        team = in_org.get(name)
        if team is None:
            team = Team(new_id("team"), org.id, name, now, managed_by=idp)
            in_org[name] = team
            _write(steps, f"team {name} created", _create_team(team))
        if team.id not in member_of:
            member_of.add(team.id)
            joined = Membership(user.id, team.id, TeamRole.MEMBER)
            _write(steps, f"joined team {name}", _join(joined))
            steps.teams.append(team.id)
        elif team.id in steps.before.teams or team.managed_by == idp:
            steps.teams.append(team.id)


def _leave(steps: _Steps) -> None:
    """Memberships the groups gave (or that are in this IdP's teams) and no longer give;
    org-admin roles likewise."""
    user = steps.user
    teams = {t.id: t for t in steps.directory.teams}
    member_of = {m.team_id for m in steps.directory.memberships if m.user_id == user.id}
    ours = {t for t in member_of if t in teams and teams[t].managed_by == steps.plan.idp}
    for team_id in sorted((set(steps.before.teams) & member_of) | ours):
        if team_id in steps.teams:
            continue
        name = teams[team_id].name if team_id in teams else team_id
        _write(steps, f"left team {name}", _remove(user.id, team_id))
    for org_id in steps.before.org_admin:
        if org_id not in steps.org_admin:
            role = OrgMembership(user.id, org_id, OrgRole.MEMBER)
            _write(steps, f"org admin of {org_id} removed", _role(role))
