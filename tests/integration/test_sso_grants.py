"""Applying a sign-in's plan through the tenancy unit of work: a team another sign-in made
meanwhile is a 409 with nothing written (the provisioner then applies again); the identity's
record of what it holds is written in the same unit, so when that write fails no role, team or
audit entry is left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from sluice.app import SluiceApp
from sluice.auth.oidc import grants
from sluice.auth.oidc.mapping import Plan
from sluice.auth.oidc.provision import first_sign_in, signed_in
from sluice.auth.principal import Principal
from sluice.errors import GatewayError
from sluice.storage.base import Grants, IdentityRecord, IdentityRepository
from sluice.tenancy.model import Governance, Membership, Org, User
from tests.integration.conftest import make_settings, running

ACTOR = Principal(key_id="sso:main", name="sign-in with main", is_admin=True)


async def test_a_team_made_meanwhile_is_a_conflict_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    async with running(make_settings(tmp_path)) as (app, _):
        control = app.control
        assert control is not None
        t = control.tenancy
        org = await t.create_org(ACTOR, "Lab", Governance())
        user = await t.create_user(
            ACTOR,
            email="a@x.org",
            name="A",
            org_id=org.id,
            team_id=None,
            max_keys=None,
            gov=Governance(),
        )
        stale = await t.directory()
        await t.create_team(ACTOR, org.id, "nlp", Governance())  # another sign-in, meanwhile
        plan = Plan("main", org="Lab", admin=True, teams=("nlp",))
        identities = app.runtime.storage.identities
        record = first_sign_in(IdentityRecord("https://idp", "s", user.id, None, (), 1.0, 1.0))
        with pytest.raises(GatewayError) as refused:
            await grants.apply(
                t,
                ACTOR,
                user=user,
                org=org,
                plan=plan,
                before=Grants(),
                directory=stale,
                now=1.0,
                record=record,
                identities=identities,
            )
        assert refused.value.status == 409
        fresh = await t.repo.get_user(user.id)
        assert fresh is not None and fresh.is_admin is False  # the unit rolled back
        assert await identities.get("https://idp", "s") is None
        held = await grants.apply(
            t,
            ACTOR,
            user=user,
            org=org,
            plan=plan,
            before=Grants(),
            directory=await t.directory(),
            now=1.0,
            record=record,
            identities=identities,
        )
        [team] = [x for x in (await t.directory()).teams if x.name == "nlp"]
        assert held == Grants(True, (), (team.id,))
        assert team.managed_by is None  # made by hand: joined, but stays a manual team
        linked = await identities.get("https://idp", "s")
        assert linked is not None and linked.grants == held


ISSUER = "https://idp.example"
PLAN = Plan("main", org="Lab", admin=True, org_admin=True, teams=("nlp",))


@dataclass
class World:
    app: SluiceApp
    org: Org
    user: User


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    async with running(make_settings(tmp_path, database_url=database_url)) as (app, _):
        control = app.control
        assert control is not None
        org = await control.tenancy.create_org(ACTOR, "Lab", Governance())
        user = await control.tenancy.create_user(
            ACTOR,
            email="a@x.org",
            name="A",
            org_id=org.id,
            team_id=None,
            max_keys=None,
            gov=Governance(),
        )
        yield World(app, org, user)


async def _apply(world: World, record: grants.Record) -> Grants:
    control = world.app.control
    assert control is not None
    t = control.tenancy
    return await grants.apply(
        t,
        ACTOR,
        user=world.user,
        org=world.org,
        plan=PLAN,
        before=Grants(),
        directory=await t.directory(),
        now=1.0,
        record=record,
        identities=world.app.runtime.storage.identities,
    )


async def _memberships(world: World) -> list[Membership]:
    control = world.app.control
    assert control is not None
    directory = await control.tenancy.directory()
    return [m for m in directory.memberships if m.user_id == world.user.id]


async def _nothing_granted(world: World, before: list[Membership]) -> None:
    """No admin role, org-admin role, team or new membership, and no ``sso.provision``
    entry."""
    control = world.app.control
    assert control is not None
    repo = control.tenancy.repo
    user = await repo.get_user(world.user.id)
    assert user is not None and user.is_admin is False
    directory = await control.tenancy.directory()
    assert [x.name for x in directory.teams if x.org_id == world.org.id] == ["default"]
    assert [m for m in directory.memberships if m.user_id == world.user.id] == before
    assert [r for r in directory.org_roles if r.user_id == world.user.id] == []
    actions = [e.action for e in await repo.audit_entries(limit=100)]
    assert "sso.provision" not in actions
    assert "user.create" in actions  # the log was read: only the unit's entry is missing


def _identity(world: World, subject: str = "s1") -> IdentityRecord:
    return IdentityRecord(ISSUER, subject, world.user.id, "a@x.org", ("ops",), 1.0, 1.0)


async def test_an_identity_write_that_fails_rolls_the_grants_back(world: World) -> None:
    """A crash while recording the sign-in: the roles, team, membership and audit entry of
    the same unit are not committed, so no grant exists that the identity does not know."""
    written: list[Grants] = []
    before = await _memberships(world)

    async def crash(identities: IdentityRepository, held: Grants) -> None:
        await first_sign_in(_identity(world))(identities, held)
        written.append(held)
        raise RuntimeError("the process died here")

    with pytest.raises(RuntimeError):
        await _apply(world, crash)
    assert written and written[0].admin  # the identity was written inside the unit...
    identities = world.app.runtime.storage.identities
    assert await identities.get(ISSUER, "s1") is None  # ...and rolled back with it
    await _nothing_granted(world, before)

    held = await _apply(world, first_sign_in(_identity(world)))  # the next sign-in
    stored = await identities.get(ISSUER, "s1")
    assert stored is not None and stored.grants == held and held.admin and held.org_admin


async def test_a_known_identity_records_its_grants_in_the_unit(world: World) -> None:
    identities = world.app.runtime.storage.identities
    assert await identities.create(_identity(world))
    held = await _apply(world, signed_in(_identity(world)))
    stored = await identities.get(ISSUER, "s1")
    assert stored is not None and stored.grants == held and held.teams


class _Unseen:
    """The identities of a unit that does not see the row another sign-in commits between
    the lookup and the insert: the insert meets the unique constraint."""

    def __init__(self, inner: IdentityRepository) -> None:
        self.inner = inner

    async def get(self, issuer: str, subject: str) -> IdentityRecord | None:
        return None

    async def create(self, record: IdentityRecord) -> bool:
        return await self.inner.create(record)


async def test_an_identity_linked_by_another_sign_in_is_a_403_with_nothing_granted(
    world: World,
) -> None:
    identities = world.app.runtime.storage.identities
    other = _identity(world)
    assert await identities.create(other)
    before = await _memberships(world)  # the other sign-in committed first

    with pytest.raises(GatewayError) as seen:
        await _apply(world, first_sign_in(_identity(world)))
    assert seen.value.status == 403 and "sign in again" in str(seen.value)

    async def late(repo: IdentityRepository, held: Grants) -> None:
        await first_sign_in(_identity(world))(cast(IdentityRepository, _Unseen(repo)), held)

    with pytest.raises(GatewayError) as raced:  # the unique violation: a 403, never a 500
        await _apply(world, late)
    assert raced.value.status == 403 and "sign in again" in str(raced.value)
    await _nothing_granted(world, before)
    assert await identities.get(ISSUER, "s1") == other
