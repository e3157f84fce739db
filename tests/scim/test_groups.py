"""SCIM Groups over HTTP (RFC 7644 §3.3, §3.5.2 members): teams of the org, their members
the group's members, in the shapes Okta and Entra ID send; over SQLite and PostgreSQL."""

from __future__ import annotations

from tests.scim.client import GROUP, PATCH
from tests.scim.conftest import Scim


async def _members(s: Scim, team_id: str) -> set[str]:
    resp = await s.admin.get(f"/api/v1/teams/{team_id}/members")
    assert resp.status_code == 200, resp.text
    return {m["user_id"] for m in resp.json()["data"]}


async def test_create_with_members_and_filter_by_display_name(scim: Scim) -> None:
    c = scim.client
    a = await c.create_user("a@example.com")
    b = await c.create_user("b@example.com")
    body = {
        "schemas": [GROUP],
        "displayName": "Tour Guides",
        "externalId": "grp-1",
        "members": [{"value": a["id"], "display": "a"}, {"value": b["id"]}],
    }
    resp = await c.request("POST", "/Groups", body)
    assert resp.status_code == 201, resp.text
    group = resp.json()
    assert group["displayName"] == "Tour Guides"
    assert group["externalId"] == "grp-1"
    assert {m["value"] for m in group["members"]} == {a["id"], b["id"]}
    assert group["meta"]["resourceType"] == "Group"
    # The group is a team of the org with those members; the users show their group.
    team = (await scim.admin.get(f"/api/v1/teams/{group['id']}")).json()
    assert team["org_id"] == scim.org_id and team["name"] == "Tour Guides"
    assert await _members(scim, group["id"]) == {a["id"], b["id"]}
    user = await c.ok("GET", f"/Users/{a['id']}")
    assert user["groups"] == [
        {"value": group["id"], "display": "Tour Guides", "$ref": group["meta"]["location"]}
    ]

    found = await c.list("/Groups", filter='displayName eq "tour guides"')
    assert [g["id"] for g in found["Resources"]] == [group["id"]]
    assert (await c.list("/Groups", filter=f'members.value eq "{b["id"]}"'))["totalResults"] == 1
    slim = await c.list("/Groups", excludedAttributes="members")
    assert "members" not in slim["Resources"][0]
    taken = await c.error(
        409, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Tour Guides"}
    )
    assert taken["scimType"] == "uniqueness"


async def test_patch_members_in_okta_and_entra_shapes(scim: Scim) -> None:
    c = scim.client
    a, b, d = [await c.create_user(f"{n}@example.com") for n in ("a", "b", "d")]
    group = await c.ok("POST", "/Groups", {"schemas": [GROUP], "displayName": "eng"})
    gid = group["id"]
    # RFC 7644 §3.5.2.1 / Entra: add with a value list (op name capitalised).
    await c.patch(
        f"/Groups/{gid}",
        {"op": "Add", "path": "members", "value": [{"value": a["id"]}, {"value": b["id"]}]},
    )
    assert await _members(scim, gid) == {a["id"], b["id"]}
    # Entra: remove with a value list.
    await c.patch(
        f"/Groups/{gid}", {"op": "Remove", "path": "members", "value": [{"value": a["id"]}]}
    )
    assert await _members(scim, gid) == {b["id"]}
    # RFC 7644 §3.5.2.2 / Okta: remove by a filtered path.
    await c.patch(f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{b["id"]}"]'})
    assert await _members(scim, gid) == set()
    # Okta: replace the whole list and rename in one PATCH without a path.
    done = await c.patch(
        f"/Groups/{gid}",
        {"op": "replace", "value": {"displayName": "engineering", "members": [{"value": d["id"]}]}},
    )
    assert done["displayName"] == "engineering"
    assert await _members(scim, gid) == {d["id"]}
    # Adding someone twice keeps one membership.
    await c.patch(f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": d["id"]}]})
    assert await _members(scim, gid) == {d["id"]}
    unknown = await c.error(
        400,
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": "user_nobody"}]}],
        },
    )
    assert unknown["scimType"] == "invalidValue" and "user_nobody" in unknown["detail"]


async def test_put_and_delete_group(scim: Scim) -> None:
    c = scim.client
    a, b = [await c.create_user(f"{n}@example.com") for n in ("a", "b")]
    group = await c.ok(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "ops", "members": [{"value": a["id"]}]},
    )
    gid = group["id"]
    put = await c.ok(
        "PUT",
        f"/Groups/{gid}",
        {"schemas": [GROUP], "displayName": "ops", "members": [{"value": b["id"]}]},
    )
    assert [m["value"] for m in put["members"]] == [b["id"]]
    assert await _members(scim, gid) == {b["id"]}

    # Deleting the group empties the team and stops it being a SCIM group; the team stays.
    assert (await c.request("DELETE", f"/Groups/{gid}")).status_code == 204
    await c.error(404, "GET", f"/Groups/{gid}")
    assert (await scim.admin.get(f"/api/v1/teams/{gid}")).status_code == 200
    assert await _members(scim, gid) == set()
    # Pushing the group again takes the same team back.
    again = await c.ok("POST", "/Groups", {"schemas": [GROUP], "displayName": "ops"})
    assert again["id"] == gid
    # The org's default team is never a SCIM group.
    default = await c.error(409, "POST", "/Groups", {"schemas": [GROUP], "displayName": "default"})
    assert default["scimType"] == "uniqueness"
