"""Archiving organisations, teams and users through the admin API: keys revoked in the same
audited unit, hidden from default lists, usage still attributed, nothing new under them."""

from __future__ import annotations

from tests.integration.test_tenancy import CHAT, World, _ok, world

__all__ = ["world"]


async def test_archiving_a_team_revokes_its_keys_and_keeps_its_usage(world: World) -> None:
    assert (await world.call("ua", "POST", "/v1/chat/completions", CHAT)).status_code == 200
    team = await _ok(await world.call("oa", "POST", "/api/v1/teams/{teamA}/archive"))
    assert team["archived_at"] is not None
    # Members' keys billing the team and its service accounts' keys stop working at once.
    for who in ("ua", "sa", "ta"):
        resp = await world.call(who, "POST", "/v1/chat/completions", CHAT)
        assert resp.status_code == 401, f"{who}: {resp.text}"
    listed = (await world.call("admin", "GET", "/api/v1/teams")).json()["data"]
    assert world.ids["teamA"] not in {t["id"] for t in listed}
    everything = (await world.call("admin", "GET", "/api/v1/teams?archived=true")).json()["data"]
    assert world.ids["teamA"] in {t["id"] for t in everything}
    # Its usage is still there, still attributed to the team.
    row = await _ok(await world.call("admin", "GET", "/api/v1/analytics/requests/{req_ua}"))
    assert row["team_id"] == world.ids["teamA"]
    audit = (await world.call("admin", "GET", "/api/v1/audit")).json()["data"]
    entry = next(a for a in audit if a["action"] == "team.archive")
    assert entry["target_id"] == world.ids["teamA"]
    assert entry["actor"] == world.ids["oa"]
    assert set(entry["after"]["revoked_keys"]) >= {world.ids["ua_key"], world.ids["sa_key"]}
    # Nothing new bills an archived team.
    refused = await world.call(
        "admin", "POST", "/api/v1/keys", {"name": "k", "team_id": world.ids["teamA"]}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "archived"
    member = await world.call(
        "admin", "PUT", "/api/v1/teams/{teamA}/members/{ub}", {"role": "member"}
    )
    assert member.status_code == 409
    # Archiving twice is a no-op.
    again = await _ok(await world.call("admin", "POST", "/api/v1/teams/{teamA}/archive"))
    assert again["archived_at"] == team["archived_at"]


async def test_archiving_an_org_archives_its_teams(world: World) -> None:
    org = await _ok(await world.call("admin", "POST", "/api/v1/orgs/{orgB}/archive"))
    assert org["archived_at"] is not None
    assert (await world.call("ub", "POST", "/v1/chat/completions", CHAT)).status_code == 401
    assert (await world.call("ua", "POST", "/v1/chat/completions", CHAT)).status_code == 200
    orgs = (await world.call("admin", "GET", "/api/v1/orgs")).json()["data"]
    assert world.ids["orgB"] not in {o["id"] for o in orgs}
    team = await _ok(await world.call("admin", "GET", "/api/v1/teams/{teamB}"))
    assert team["archived_at"] is not None
    refused = await world.call("admin", "POST", "/api/v1/orgs/{orgB}/teams", {"name": "late"})
    assert refused.status_code == 409


async def test_the_default_team_goes_with_its_org(world: World) -> None:
    org = await _ok(await world.call("admin", "GET", "/api/v1/orgs/{orgA}"))
    world.ids["default"] = str(org["default_team_id"])
    resp = await world.call("admin", "POST", "/api/v1/teams/{default}/archive")
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "team_id"


async def test_archiving_a_user_disables_them_and_revokes_their_keys(world: World) -> None:
    assert (await world.call("oa", "POST", "/api/v1/users/{oa}/archive")).status_code == 403
    user = await _ok(await world.call("oa", "POST", "/api/v1/users/{ua}/archive"))
    assert user["archived_at"] is not None and user["disabled"] is True
    assert (await world.call("ua", "POST", "/v1/chat/completions", CHAT)).status_code == 401
    assert (await world.call("sa", "POST", "/v1/chat/completions", CHAT)).status_code == 200
    users = (await world.call("admin", "GET", "/api/v1/users")).json()["data"]
    assert world.ids["ua"] not in {u["id"] for u in users}
    everyone = (await world.call("admin", "GET", "/api/v1/users?archived=true")).json()["data"]
    assert world.ids["ua"] in {u["id"] for u in everyone}
    key = await world.call(
        "admin", "POST", "/api/v1/keys", {"name": "k", "user_id": world.ids["ua"]}
    )
    assert key.status_code == 409


async def test_audit_filters_and_pages(world: World) -> None:
    for i in range(3):
        await _ok(await world.call("oa", "PATCH", "/api/v1/users/{ua}", {"name": f"ua{i}"}))
    await _ok(await world.call("admin", "POST", "/api/v1/teams/{teamB}/archive"))

    async def audit(query: str, role: str = "admin") -> list[dict[str, object]]:
        resp = await world.call(role, "GET", f"/api/v1/audit?{query}")
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]  # type: ignore[no-any-return]

    mine = await audit("actor={oa}&action=user.update&target_id={ua}".format(**world.ids))
    assert [e["after"]["name"] for e in mine] == ["ua2", "ua1", "ua0"]  # type: ignore[index]
    family = await audit("action=team.")
    assert {e["action"] for e in family} >= {"team.archive", "team.create", "team.member"}
    assert all(str(e["action"]).startswith("team.") for e in family)
    first = await audit("actor={oa}&limit=2".format(**world.ids))
    rest = await audit("actor={oa}&limit=2&before_id={}".format(first[-1]["id"], **world.ids))
    assert len(first) == 2 and len(rest) == 1 and rest[0]["id"] < first[-1]["id"]  # type: ignore[operator]
    assert await audit("from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z") == []
    assert len(await audit("from=2000-01-01T00:00:00Z")) > 5
    bad = await world.call(
        "admin", "GET", "/api/v1/audit?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z"
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "from"
    # Org admins read their organisation's entries only, filters or not.
    scoped = await audit("org_id={orgA}&action=team.".format(**world.ids), role="oa")
    assert scoped and {e["org_id"] for e in scoped} == {world.ids["orgA"]}
    denied = await world.call("oa", "GET", "/api/v1/audit?action=team.")
    assert denied.status_code == 403
