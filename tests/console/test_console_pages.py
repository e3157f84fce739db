"""Console pages by role over HTTP: what each person sees, and that the console refuses
what the admin API would refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.console.support import console_world, signed_in
from tests.integration.test_tenancy import CHAT, World


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with console_world(tmp_path) as w:
        yield w


NAV = ('href="/ui/team"', 'href="/ui/org"', 'href="/ui/admin"')


@pytest.mark.parametrize(
    ("who", "links"),
    [
        ("ua@example.org", (False, False, False)),
        ("ta@example.org", (True, False, False)),
        ("oa@example.org", (True, True, False)),
        ("root@example.org", (True, True, True)),
    ],
)
async def test_the_nav_shows_only_what_the_role_may_use(
    world: World, who: str, links: tuple[bool, bool, bool]
) -> None:
    async with signed_in(world.app, who) as b:
        page = (await b.get("/ui/keys")).text
        assert tuple(link in page for link in NAV) == links


async def test_a_member_cannot_reach_admin_team_or_other_tenants_by_url(world: World) -> None:
    ids = world.ids
    async with signed_in(world.app, "ua@example.org") as b:
        admin_pages = ("/ui/admin", "/ui/admin/users", "/ui/admin/providers", "/ui/admin/settings")
        for path in (*admin_pages, "/ui/admin/sso"):
            resp = await b.get(path)
            assert resp.status_code == 403, path
            assert 'href="/ui/admin"' not in resp.text
        assert (await b.get("/ui/admin/models.json")).status_code == 403
        assert (await b.get(f"/ui/team/{ids['teamA']}")).status_code == 403  # own team, no admin
        assert (await b.get(f"/ui/team/{ids['teamB']}")).status_code == 404  # another tenant
        assert (await b.get(f"/ui/org/{ids['orgB']}")).status_code == 404
        assert (await b.get("/ui/org")).status_code == 403
        posted = await b.post(f"/ui/team/{ids['teamB']}/limits", {"limits.rpm": "1"})
        assert posted.status_code == 404
        revoke = await b.post(f"/ui/keys/{ids['ub_key']}/revoke")
        assert revoke.status_code == 404
        page = (await b.get("/ui/keys")).text
        assert "ub-key" not in page and "ua-key" in page


async def test_a_team_admin_sees_only_their_team(world: World) -> None:
    async with signed_in(world.app, "ta@example.org") as b:
        resp = await b.get("/ui/team")
        assert resp.status_code == 303 and resp.headers["location"].endswith(world.ids["teamA"])
        page = await b.get(f"/ui/team/{world.ids['teamA']}")
        assert page.status_code == 200
        assert "ua@example.org" in page.text and "ub@example.org" not in page.text
        assert (await b.get(f"/ui/team/{world.ids['teamB']}")).status_code == 404
        assert (await b.get(f"/ui/org/{world.ids['orgA']}")).status_code == 403


async def test_key_created_in_the_console_works_until_revoked(world: World) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        await b.get("/ui/keys")
        empty = await b.post("/ui/keys", {"name": ""})
        assert empty.status_code == 400 and "name is required" in empty.text
        made = await b.post("/ui/keys", {"name": "laptop", "team_id": world.ids["teamA"]})
        assert made.status_code == 201 and "Copy your key now" in made.text
        secret = made.text.split('id="new-secret" value="')[1].split('"')[0]
        headers = {"Authorization": f"Bearer {secret}"}
        assert (
            await world.client.post("/v1/chat/completions", json=CHAT, headers=headers)
        ).status_code == 200
        assert world.app.runtime is not None
        record = next(r for r in await world.app.runtime.storage.keys.list() if r.name == "laptop")
        await b.get("/ui/keys")
        assert (await b.post(f"/ui/keys/{record.id}/revoke")).status_code == 303
        gone = await world.client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert gone.status_code == 401


async def test_team_admin_limit_applies_and_caps_show_inline(world: World) -> None:
    ids = world.ids
    await world.call("admin", "PATCH", "/api/v1/orgs/{orgA}", {"limits": {"rpm": 50}})
    async with signed_in(world.app, "ta@example.org") as b:
        await b.get(f"/ui/team/{ids['teamA']}")
        too_high = await b.post(f"/ui/team/{ids['teamA']}/limits", {"limits.rpm": "100"})
        assert too_high.status_code == 403
        assert 'id="err-limits-rpm"' in too_high.text and "above the organisation" in too_high.text
        bad = await b.post(f"/ui/team/{ids['teamA']}/limits", {"limits.rpm": "lots"})
        assert bad.status_code == 400 and 'id="err-limits-rpm"' in bad.text
        ok = await b.post(f"/ui/team/{ids['teamA']}/limits", {"limits.rpm": "1"})
        assert ok.status_code == 303
    first = await world.call("ua", "POST", "/v1/chat/completions", CHAT)
    second = await world.call("ua", "POST", "/v1/chat/completions", CHAT)
    assert first.status_code == 200 and second.status_code == 429


async def test_team_admin_manages_service_accounts_and_their_keys(world: World) -> None:
    ids = world.ids
    async with signed_in(world.app, "ta@example.org") as b:
        await b.get(f"/ui/team/{ids['teamA']}")
        made = await b.post(f"/ui/team/{ids['teamA']}/service-accounts", {"sa_name": "nightly"})
        assert made.status_code == 303
        page = (await b.get(f"/ui/team/{ids['teamA']}")).text
        assert "nightly" in page
        assert world.app.runtime is not None
        sa = next(
            s for s in world.app.runtime.keys.index.service_accounts.values() if s.name == "nightly"
        )
        key = await b.post(
            f"/ui/team/{ids['teamA']}/service-accounts/{sa.id}/keys", {"key_name": "job"}
        )
        assert key.status_code == 201 and "Copy your key now" in key.text


async def test_taking_the_admin_role_applies_to_the_next_page(world: World) -> None:
    async with signed_in(world.app, "root@example.org") as b:
        assert (await b.get("/ui/admin")).status_code == 200
        await world.call("admin", "DELETE", "/api/v1/users/{root}/admin")
        assert (await b.get("/ui/admin")).status_code == 403


async def test_admin_pages_render_and_mask_secrets(world: World) -> None:
    async with signed_in(world.app, "root@example.org") as b:
        for path in (
            "/ui/admin",
            "/ui/admin/users",
            "/ui/admin/models",
            "/ui/admin/routing",
            "/ui/admin/providers",
            "/ui/admin/audit",
            "/ui/admin/settings",
            "/ui/admin/sso",
            f"/ui/org/{world.ids['orgA']}",
            f"/ui/team/{world.ids['teamB']}",
            "/ui/playground",
            "/ui/account",
        ):
            resp = await b.get(path)
            assert resp.status_code == 200, (path, resp.text[:500])
        settings = (await b.get("/ui/admin/settings")).text
        assert "test-master-key" not in settings and "set (hidden)" in settings
        health = (await b.get("/ui/admin/models.json")).json()
        assert {m["model"] for m in health["models"]} >= {"mock-gpt"}
        made = await b.post("/ui/admin/orgs", {"org_name": "org-A"})
        assert made.status_code == 409 and "already exists" in made.text
        pw = await b.post(f"/ui/admin/users/{world.ids['ub']}/password", {"password": "short"})
        assert pw.status_code == 400 and "at least 10" in pw.text


async def test_org_admin_creates_teams_and_people_in_their_org(world: World) -> None:
    ids = world.ids
    async with signed_in(world.app, "oa@example.org") as b:
        page = await b.get(f"/ui/org/{ids['orgA']}")
        assert page.status_code == 200 and "team-A1" in page.text and "team-B1" not in page.text
        assert (
            await b.post(f"/ui/org/{ids['orgA']}/teams", {"team_name": "research"})
        ).status_code == 303
        bad = await b.post(f"/ui/org/{ids['orgA']}/users", {"email": "not-an-email"})
        assert bad.status_code == 400 and "not an email address" in bad.text
        ok = await b.post(f"/ui/org/{ids['orgA']}/users", {"email": "new@example.org"})
        assert ok.status_code == 303
        assert "new@example.org" in (await b.get(f"/ui/org/{ids['orgA']}")).text
        assert (await b.get(f"/ui/org/{ids['orgB']}")).status_code == 404
