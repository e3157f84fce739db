"""Provisioning on sign-in against a real OpenID Provider: the groups claim maps a person to
an organisation, admin roles and IdP-managed teams, again at every sign-in (grants taken back
when the groups change, grants made by hand left alone), audited; refusals are clear pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.app import SluiceApp
from sluice.tenancy.model import OrgRole
from tests.console.support import set_password, signed_in
from tests.idp import Idp
from tests.sso.conftest import sso_config, through_idp
from tests.sso.test_console_sso import gateway, refused, start

pytestmark = pytest.mark.e2e

RULES = """
org_rules:
  - match: '^lab-(?P<org>[a-z]+)$'
    org: 'Lab {org}'
    create: true
admin_groups: [ops]
org_admin_groups: [bio-leads]
teams:
  - match: '^team-(?P<team>[a-z]+)$'
allowed_domains: [example.edu]
"""


def person(groups: list[str], email: str = "erin@example.edu") -> dict[str, Any]:
    return {"email": email, "email_verified": True, "name": "Erin", "groups": groups}


async def sign_in_as(browser: httpx.AsyncClient, login: str) -> httpx.Response:
    """A fresh browser at the IdP each time (no IdP session carried over)."""
    browser.cookies.clear()
    async with httpx.AsyncClient(timeout=10) as at_idp:
        callback = await through_idp(at_idp, await start(browser), login=login)
    return await browser.get(callback)


async def state(app: SluiceApp, email: str) -> dict[str, Any]:
    rt = app.runtime
    assert rt is not None
    user = await rt.storage.tenancy.user_by_email(email)
    assert user is not None
    d = await rt.storage.tenancy.directory()
    teams = {t.id: t for t in d.teams}
    orgs = {o.id: o.name for o in d.orgs}
    return {
        "admin": user.is_admin,
        "org_admin": sorted(
            orgs[r.org_id] for r in d.org_roles if r.user_id == user.id and r.role is OrgRole.ADMIN
        ),
        "teams": sorted(
            (orgs[teams[m.team_id].org_id], teams[m.team_id].name, teams[m.team_id].managed_by)
            for m in d.memberships
            if m.user_id == user.id
        ),
        "user_id": user.id,
    }


async def test_groups_map_to_org_roles_and_teams_at_every_sign_in(tmp_path: Path, idp: Idp) -> None:
    idp.set_account("erin", person(["lab-bio", "team-nlp", "team-vision", "bio-leads", "ops"]))
    async with gateway(tmp_path, sso_config(idp, provisioning=RULES)) as (app, browser):
        rt = app.runtime
        assert rt is not None
        assert (await sign_in_as(browser, "erin")).status_code == 303
        first = await state(app, "erin@example.edu")
        assert first["admin"] is True
        assert first["org_admin"] == ["Lab bio"]
        assert first["teams"] == [
            ("Lab bio", "default", None),
            ("Lab bio", "nlp", "main"),
            ("Lab bio", "vision", "main"),
        ]
        # The groups change: roles and IdP teams the groups gave are taken back.
        idp.set_account("erin", person(["lab-bio", "team-vision"]))
        assert (await sign_in_as(browser, "erin")).status_code == 303
        second = await state(app, "erin@example.edu")
        assert (second["admin"], second["org_admin"]) == (False, [])
        assert second["teams"] == [("Lab bio", "default", None), ("Lab bio", "vision", "main")]
        entries = await rt.storage.tenancy.audit_entries(org_id=None, limit=50, before_id=None)
        provisioned = [e for e in entries if e.action == "sso.provision"]
        assert len(provisioned) == 2
        assert provisioned[0].after is not None
        assert "admin removed" in provisioned[0].after["changes"]
        assert "left team nlp" in provisioned[0].after["changes"]
        # A sign-in that changes nothing writes no audit entry.
        assert (await sign_in_as(browser, "erin")).status_code == 303
        again = await rt.storage.tenancy.audit_entries(org_id=None, limit=50, before_id=None)
        assert len([e for e in again if e.action == "sso.provision"]) == 2


async def test_grants_made_by_hand_and_manual_teams_are_left_alone(
    tmp_path: Path, idp: Idp
) -> None:
    idp.set_account("frank", person(["lab-chem", "team-ops"], "frank@example.edu"))
    async with gateway(tmp_path, sso_config(idp, provisioning=RULES)) as (app, browser):
        rt = app.runtime
        assert rt is not None
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gw",
            headers={"Authorization": "Bearer test-master-key"},
        )
        async with admin:
            org = (await admin.post("/api/v1/orgs", json={"name": "Lab chem"})).json()
            made = await admin.post(f"/api/v1/orgs/{org['id']}/teams", json={"name": "ops"})
            assert made.status_code == 201, made.text
            assert (await sign_in_as(browser, "frank")).status_code == 303
            user_id = (await state(app, "frank@example.edu"))["user_id"]
            # a manual team named by a rule is not joined (sync_manual_teams is off)
            assert (await state(app, "frank@example.edu"))["teams"] == [
                ("Lab chem", "default", None)
            ]
            granted = await admin.put(f"/api/v1/users/{user_id}/admin")
            assert granted.status_code < 300, granted.text
            joined = await admin.put(
                f"/api/v1/teams/{made.json()['id']}/members/{user_id}", json={"role": "member"}
            )
            assert joined.status_code < 300, joined.text
        assert (await sign_in_as(browser, "frank")).status_code == 303
        after = await state(app, "frank@example.edu")
        assert after["admin"] is True
        assert ("Lab chem", "ops", None) in after["teams"]


async def test_refusals_are_clear_pages(tmp_path: Path, idp: Idp) -> None:
    idp.set_account("mallory", person(["lab-bio"], "mallory@evil.example"))
    idp.set_account("nobody", person(["visitors"], "nobody@example.edu"))
    config = sso_config(idp, provisioning=RULES, default_org=None)
    async with gateway(tmp_path, config) as (app, browser):
        refused(await sign_in_as(browser, "mallory"), 403, "example.edu only")
        refused(await sign_in_as(browser, "nobody"), 403, "none of your groups maps")
        rt = app.runtime
        assert rt is not None
        assert await rt.storage.tenancy.user_by_email("nobody@example.edu") is None


async def test_admins_see_sign_in_sources_and_the_mapping_with_its_dry_run(
    tmp_path: Path, idp: Idp
) -> None:
    idp.set_account("gina", person(["lab-bio", "team-nlp"], "gina@example.edu"))
    async with gateway(tmp_path, sso_config(idp, provisioning=RULES)) as (app, browser):
        assert (await sign_in_as(browser, "gina")).status_code == 303
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gw",
            headers={"Authorization": "Bearer test-master-key"},
        )
        async with admin:
            root = await admin.post("/api/v1/users", json={"email": "root@x.org", "name": "R"})
            assert (await admin.put(f"/api/v1/users/{root.json()['id']}/admin")).status_code == 200
            users = {u["email"]: u for u in (await admin.get("/api/v1/users")).json()["data"]}
            teams = (await admin.get("/api/v1/teams")).json()["data"]
            assert {(t["name"], t["managed_by"]) for t in teams} >= {
                ("nlp", "main"),
                ("default", None),
            }
            gina, local = users["gina@example.edu"], users["root@x.org"]
            one = (await admin.get(f"/api/v1/users/{gina['id']}")).json()
            assert {k: one[k] for k in ("identity_source", "groups")} == {
                "identity_source": "main",
                "groups": ["lab-bio", "team-nlp"],
            }
        assert gina["identity_source"] == "main"
        assert gina["groups"] == ["lab-bio", "team-nlp"]
        assert gina["last_sign_in_at"] is not None
        assert (local["identity_source"], local["groups"], local["last_sign_in_at"]) == (
            "local",
            [],
            None,
        )
        await set_password(app, root.json()["id"])
        async with signed_in(app, "root@x.org") as b:
            listed = (await b.get("/ui/admin/users")).text
            assert "lab-bio, team-nlp" in listed and "<td>main</td>" in listed
            page = (await b.get("/ui/admin/sso")).text
            assert "^lab-(?P&lt;org&gt;[a-z]+)$" in page and "example.edu" in page
            checked = await b.post(
                "/ui/admin/sso/check",
                {"idp": "main", "groups": "lab-bio, ops, team-x", "email": "z@example.edu"},
            )
            assert checked.status_code == 200, checked.text
            assert "organisation: Lab bio from rule" in checked.text
            assert "admin: yes" in checked.text and "teams: x" in checked.text
            unknown = await b.post("/ui/admin/sso/check", {"idp": "nope"})
            assert unknown.status_code == 404
            assert "no identity provider named" in unknown.text
