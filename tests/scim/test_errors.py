"""Bad input, wrong tokens and the discovery documents: every refusal a SCIM error
(RFC 7644 §3.12) with its status and ``scimType``, naming the problem, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import make_settings, running
from tests.scim.client import GROUP, PATCH, USER, ScimClient
from tests.scim.conftest import Scim


async def test_wrong_or_missing_token_is_401(scim: Scim) -> None:
    c = scim.client
    wrong = await c.request("GET", "/Users", token="scim-test-token-0123456789abcdef012345678X")
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert wrong.json()["status"] == "401"
    bare = await scim.admin.get("/scim/v2/Users", headers={"Authorization": ""})
    assert bare.status_code == 401
    # The gateway's master key is not a SCIM token.
    master = await scim.admin.get("/scim/v2/Users")
    assert master.status_code == 401


async def test_without_auth_scim_the_routes_do_not_exist(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (_, client):
        resp = await ScimClient(client, "anything").http.get(
            "/scim/v2/Users", headers={"Authorization": "Bearer anything"}
        )
        assert resp.status_code == 404


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("userName eq", "ends too early"),
        ('userName regex "x"', "unknown operator 'regex'"),
        ('password eq "x"', "'password'"),
        ('userName eq "x" or', "ends too early"),
        ('(userName eq "x"', "expected ')' but the filter ends"),
        ("userName eq x", "not a value"),
        ('userName eq "x" extra', "unexpected 'extra'"),
        ("active gt true", "booleans"),
        ('meta.lastModified gt "yesterday"', "not a date-time"),
        ("(" * 20 + 'userName eq "x"' + ")" * 20, "nests more than"),
        (" or ".join(['userName eq "x"'] * 50), "more than 40 comparisons"),
        ('userName eq "' + "x" * 1200 + '"', "longer than"),
    ],
)
async def test_bad_filters_are_400_invalid_filter(scim: Scim, query: str, named: str) -> None:
    err = await scim.client.error(400, "GET", "/Users", filter=query)
    assert err["scimType"] in ("invalidFilter", "invalidValue")
    assert named in err["detail"]


async def test_bad_bodies_are_400_naming_the_problem(scim: Scim) -> None:
    c = scim.client
    raw = await c.http.post(
        "/scim/v2/Users",
        content=b"{not json",
        headers={"Authorization": f"Bearer {c.token}", "Content-Type": "application/scim+json"},
    )
    assert raw.status_code == 400 and raw.json()["scimType"] == "invalidSyntax"
    missing = await c.error(400, "POST", "/Users", {"schemas": [USER]})
    assert missing["scimType"] == "invalidValue" and "userName" in missing["detail"]
    long = await c.error(400, "POST", "/Users", {"schemas": [USER], "userName": "x" * 400})
    assert "userName" in long["detail"]
    bad_active = await c.error(
        400, "POST", "/Users", {"schemas": [USER], "userName": "a@x.org", "active": "maybe"}
    )
    assert "active" in bad_active["detail"]
    nested = await c.error(
        400,
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "g", "members": [{"value": "x", "type": "Group"}]},
    )
    assert "groups in groups" in nested["detail"]
    huge = await c.http.post(
        "/scim/v2/Groups",
        content=b'{"displayName": "' + b"x" * (3 * 1024 * 1024) + b'"}',
        headers={"Authorization": f"Bearer {c.token}", "Content-Type": "application/scim+json"},
    )
    assert huge.status_code == 413
    paging = await c.error(400, "GET", "/Users", startIndex="two")
    assert "startIndex" in paging["detail"]


async def test_conflicts_mutability_and_patch_errors(scim: Scim) -> None:
    c = scim.client
    made = await c.create_user("bjensen@example.com", externalId="e1")
    dup = await c.error(
        409, "POST", "/Users", {"schemas": [USER], "userName": "BJensen@example.com"}
    )
    assert dup["scimType"] == "uniqueness"
    dup_ext = await c.error(
        409, "POST", "/Users", {"schemas": [USER], "userName": "o@example.com", "externalId": "e1"}
    )
    assert "externalId" in dup_ext["detail"]
    path = f"/Users/{made['id']}"

    def ops(*operations: object) -> dict[str, object]:
        return {"schemas": [PATCH], "Operations": list(operations)}

    ro = await c.error(400, "PATCH", path, ops({"op": "replace", "path": "id", "value": "x"}))
    assert ro["scimType"] == "mutability"
    groups = await c.error(400, "PATCH", path, ops({"op": "add", "path": "groups", "value": []}))
    assert groups["scimType"] == "mutability"
    bad_op = await c.error(400, "PATCH", path, ops({"op": "move", "path": "active"}))
    assert bad_op["scimType"] == "invalidSyntax" and "op" in bad_op["detail"]
    no_path = await c.error(400, "PATCH", path, ops({"op": "remove"}))
    assert no_path["scimType"] == "noTarget"
    bad_path = await c.error(400, "PATCH", path, ops({"op": "remove", "path": "emails[type eq"}))
    assert bad_path["scimType"] == "invalidPath"
    no_schema = await c.error(400, "PATCH", path, {"Operations": [{"op": "remove", "path": "x"}]})
    assert no_schema["scimType"] == "invalidSyntax"
    cleared = await c.error(400, "PATCH", path, ops({"op": "remove", "path": "userName"}))
    assert "userName" in cleared["detail"]
    await c.error(404, "GET", "/Users/user_nobody")
    await c.error(404, "PATCH", "/Groups/team_nobody", ops({"op": "remove", "path": "members"}))
    unknown = await c.error(404, "GET", "/Widgets")
    assert "/scim/v2/Widgets" in unknown["detail"]


async def test_admins_are_not_changed_through_scim(scim: Scim) -> None:
    made = await scim.client.create_user("root@example.com")
    promoted = await scim.admin.put(f"/api/v1/users/{made['id']}/admin")
    assert promoted.status_code < 300, promoted.text
    err = await scim.client.error(
        403,
        "PATCH",
        f"/Users/{made['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert "admin" in err["detail"]


async def test_discovery_documents(scim: Scim) -> None:
    c = scim.client
    config = await c.ok("GET", "/ServiceProviderConfig")
    assert config["patch"]["supported"] is True
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = await c.list("/ResourceTypes")
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    assert (await c.ok("GET", "/ResourceTypes/User"))["schema"] == USER
    schemas = await c.list("/Schemas")
    assert {s["id"] for s in schemas["Resources"]} == {USER, GROUP}
    user = await c.ok("GET", f"/Schemas/{USER}")
    assert any(a["name"] == "userName" and a["required"] for a in user["attributes"])


async def test_odd_json_bodies_are_scim_400s(scim: Scim) -> None:
    c = scim.client
    made = await c.create_user("odd@example.com")
    group = await c.ok("POST", "/Groups", {"schemas": [GROUP], "displayName": "odd"})
    cases: list[tuple[str, str, object]] = [
        ("POST", "/Users", []),
        ("POST", "/Users", {"userName": 12}),
        ("POST", "/Users", {"userName": "a@x.org", "name": "Barbara"}),
        ("POST", "/Users", {"userName": "a@x.org", "externalId": {"x": 1}}),
        ("POST", "/Users", {"userName": "a\u0000@x.org"}),
        ("POST", "/Groups", {"displayName": "g", "members": {"value": "x"}}),
        ("POST", "/Groups", {"displayName": "g", "members": [{"value": 7}]}),
        ("POST", "/Groups", {"displayName": ["g"]}),
        ("PUT", f"/Users/{made['id']}", "text"),
        ("PATCH", f"/Users/{made['id']}", {"schemas": [PATCH], "Operations": "replace"}),
        ("PATCH", f"/Users/{made['id']}", {"schemas": [PATCH], "Operations": [None]}),
        (
            "PATCH",
            f"/Users/{made['id']}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "value": 3}]},
        ),
        (
            "PATCH",
            f"/Users/{made['id']}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": 3}]},
        ),
        (
            "PATCH",
            f"/Users/{made['id']}",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": [1]}]},
        ),
        (
            "PATCH",
            f"/Groups/{group['id']}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [3]}]},
        ),
        (
            "PATCH",
            f"/Groups/{group['id']}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members"}] * 101},
        ),
    ]
    for method, path, body in cases:
        err = await c.error(400, method, path, body)
        assert err["scimType"] in ("invalidValue", "invalidSyntax", "invalidPath", "noTarget"), (
            method,
            path,
            body,
            err,
        )
