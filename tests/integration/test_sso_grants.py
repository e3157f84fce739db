"""Applying a sign-in's plan through the tenancy unit of work: a team another sign-in made
meanwhile is a 409 with nothing written (the provisioner then applies again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.auth.oidc import grants
from sluice.auth.oidc.mapping import Plan
from sluice.auth.principal import Principal
from sluice.errors import GatewayError
from sluice.storage.base import Grants
from sluice.tenancy.model import Governance
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
        with pytest.raises(GatewayError) as refused:
            await grants.apply(
                t, ACTOR, user=user, org=org, plan=plan, before=Grants(), directory=stale, now=1.0
            )
        assert refused.value.status == 409
        fresh = await t.repo.get_user(user.id)
        assert fresh is not None and fresh.is_admin is False  # the unit rolled back
        held = await grants.apply(
            t,
            ACTOR,
            user=user,
            org=org,
            plan=plan,
            before=Grants(),
            directory=await t.directory(),
            now=1.0,
        )
        [team] = [x for x in (await t.directory()).teams if x.name == "nlp"]
        assert held == Grants(True, (), (team.id,))
        assert team.managed_by is None  # made by hand: joined, but stays a manual team
