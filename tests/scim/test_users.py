"""SCIM Users over HTTP, following RFC 7644's examples (§3.3 create, §3.4.1 get, §3.4.2
filter and pagination, §3.5.1 replace, §3.5.2 modify, §3.6 delete), over SQLite and
PostgreSQL: a user provisioned ahead of sign-in, deactivated (keys and sessions end),
reactivated, deprovisioned."""

from __future__ import annotations

from typing import Any

from tests.console.support import set_password, signed_in
from tests.scim.client import PATCH, USER
from tests.scim.conftest import Scim

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


async def _key_of(s: Scim, user_id: str) -> str:
    made = await s.admin.post("/api/v1/keys", json={"name": "laptop", "user_id": user_id})
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


async def _audit(s: Scim) -> list[dict[str, Any]]:
    resp = await s.admin.get("/api/v1/audit", params={"org_id": s.org_id})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]  # type: ignore[no-any-return]


async def _chat(s: Scim, key: str) -> int:
    resp = await s.admin.post(
        "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}
    )
    return resp.status_code


async def test_create_get_and_the_user_joins_the_org(scim: Scim) -> None:
    c = scim.client
    made = await c.create_user("bjensen@example.com", externalId="00u1abc")
    assert made["schemas"] == [USER]
    assert made["userName"] == "bjensen@example.com"
    assert made["externalId"] == "00u1abc"
    assert made["name"]["givenName"] == "Barbara"
    assert made["displayName"] == "Barbara Jensen"
    assert made["active"] is True
    assert made["emails"] == [{"value": "bjensen@example.com", "type": "work", "primary": True}]
    meta = made["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"].endswith(f"/scim/v2/Users/{made['id']}")
    assert meta["version"].startswith('W/"')
    assert meta["created"].endswith("Z")

    got = await c.request("GET", f"/Users/{made['id']}")
    assert got.status_code == 200
    assert got.json() == made
    assert got.headers["etag"] == meta["version"]

    # A Sluice user of the org (its default team), audited with the SCIM principal.
    user = (await scim.admin.get(f"/api/v1/users/{made['id']}")).json()
    assert user["email"] == "bjensen@example.com"
    entries = await _audit(scim)
    created = [e for e in entries if e["action"] == "user.create"]
    assert created and created[0]["actor"] == "scim:acme"


async def test_filter_and_pagination(scim: Scim) -> None:
    c = scim.client
    for n in range(5):
        await c.create_user(f"user{n}@example.com", externalId=f"ext-{n}")
    found = await c.list("/Users", filter='userName eq "USER3@example.com"')
    assert found["totalResults"] == 1
    assert found["Resources"][0]["userName"] == "user3@example.com"
    assert (await c.list("/Users", filter='externalId eq "ext-4"'))["Resources"][0][
        "externalId"
    ] == "ext-4"
    assert (await c.list("/Users", filter='externalId eq "EXT-4"'))["totalResults"] == 0
    work = await c.list("/Users", filter='emails[type eq "work" and value co "user1"]')
    assert [r["userName"] for r in work["Resources"]] == ["user1@example.com"]
    either = await c.list(
        "/Users",
        filter='(userName sw "user1" or userName ew "4@example.com") and not (active eq false)',
    )
    assert sorted(r["userName"] for r in either["Resources"]) == [
        "user1@example.com",
        "user4@example.com",
    ]
    assert (await c.list("/Users", filter="externalId pr"))["totalResults"] == 5
    assert (await c.list("/Users", filter='meta.lastModified gt "2000-01-01T00:00:00Z"'))[
        "totalResults"
    ] == 5

    page = await c.list("/Users", startIndex=2, count=2)
    assert page["totalResults"] == 5
    assert page["startIndex"] == 2
    assert page["itemsPerPage"] == 2
    everyone = await c.list("/Users")
    assert [r["id"] for r in page["Resources"]] == [r["id"] for r in everyone["Resources"][1:3]]
    assert (await c.list("/Users", startIndex=0, count=-5))["itemsPerPage"] == 0
    assert (await c.list("/Users", startIndex=5, count=10))["itemsPerPage"] == 1
    slim = await c.list("/Users", attributes="userName", count=1)
    assert set(slim["Resources"][0]) == {"schemas", "id", "userName", "meta"}


async def test_deactivate_revokes_keys_and_ends_sessions_then_reactivate(scim: Scim) -> None:
    c = scim.client
    made = await c.create_user("leaver@example.com")
    key = await _key_of(scim, made["id"])
    assert await _chat(scim, key) == 200
    await set_password(scim.app, made["id"])
    async with signed_in(scim.app, "leaver@example.com") as browser:
        # Okta's shape: replace without a path, the value an object.
        done = await c.patch(f"/Users/{made['id']}", {"op": "replace", "value": {"active": False}})
        assert done["active"] is False
        assert await _chat(scim, key) == 401
        page = await browser.client.get("/ui/keys")
        assert page.status_code in (302, 303, 307) and "/ui/login" in page.headers["location"]
    keys = (await scim.admin.get("/api/v1/keys")).json()["data"]
    mine = [k for k in keys if k["user_id"] == made["id"]]
    assert mine and all(k["revoked_at"] is not None for k in mine)
    off = next(e for e in await _audit(scim) if e["action"] == "user.deactivate")
    assert off["actor"] == "scim:acme"
    assert off["after"]["revoked_keys"] == [mine[0]["id"]]

    # Entra's shape: "Replace" with a path and the boolean as text. Keys stay revoked.
    back = await c.patch(
        f"/Users/{made['id']}", {"op": "Replace", "path": "active", "value": "True"}
    )
    assert back["active"] is True
    assert await _chat(scim, key) == 401
    assert await _chat(scim, await _key_of(scim, made["id"])) == 200


async def test_put_replaces_and_patch_paths(scim: Scim) -> None:
    c = scim.client
    made = await c.create_user("bjensen@example.com")
    uid = made["id"]
    body: dict[str, Any] = {
        "schemas": [USER],
        "id": uid,
        "userName": "babs@example.com",
        "externalId": "bjensen",
        "name": {"formatted": "Ms. Barbara J Jensen III", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": True,
    }
    put = await c.ok("PUT", f"/Users/{uid}", body)
    assert put["userName"] == "babs@example.com"
    assert put["displayName"] == "Babs Jensen"
    assert put["externalId"] == "bjensen"
    assert put["meta"]["version"] != made["meta"]["version"]
    stale = await c.http.patch(
        f"/scim/v2/Users/{uid}",
        json={"schemas": [PATCH], "Operations": [{"op": "remove", "path": "externalId"}]},
        headers={"Authorization": f"Bearer {c.token}", "If-Match": made["meta"]["version"]},
    )
    assert stale.status_code == 412 and stale.json()["scimType"] == "preconditionFailed"
    patched = await c.patch(
        f"/Users/{uid}",
        {"op": "replace", "path": "displayName", "value": "Barbara"},
        {"op": "add", "path": "name.familyName", "value": "Jensen"},
        {"op": "remove", "path": "externalId"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ignored@x.org"},
        {
            "op": "add",
            "value": {
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            },
        },
    )
    assert patched["displayName"] == "Barbara"
    assert patched["name"]["familyName"] == "Jensen"
    assert "externalId" not in patched
    assert patched["emails"][0]["value"] == "babs@example.com"  # userName is the address


async def test_delete_deprovisions(scim: Scim) -> None:
    c = scim.client
    made = await c.create_user("gone@example.com")
    key = await _key_of(scim, made["id"])
    resp = await c.request("DELETE", f"/Users/{made['id']}")
    assert resp.status_code == 204
    assert await _chat(scim, key) == 401
    await c.error(404, "GET", f"/Users/{made['id']}")
    user = (await scim.admin.get(f"/api/v1/users/{made['id']}")).json()
    assert user["disabled"] is True
    assert (await c.list("/Users"))["totalResults"] == 0
