"""The admin API reads a JSON body whatever its label, as the data plane does (issue #21,
point 4): ``curl -d`` sends form-urlencoded, a browser's ``fetch`` sends text/plain."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import make_settings, running


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "text/plain;charset=UTF-8", "application/json"],
)
async def test_json_body_under_any_label_creates_the_org(
    tmp_path: Path, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with running(make_settings(tmp_path)) as (_, client):
        body = orjson.dumps({"name": "physics"})
        made = await client.post("/api/v1/orgs", content=body, headers=headers)
        assert made.status_code == 201, made.text
        orgs = (await client.get("/api/v1/orgs")).json()["data"]
        assert [o["name"] for o in orgs] == ["physics"]


async def test_a_form_body_is_refused_as_not_json(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (_, client):
        resp = await client.post("/api/v1/orgs", data={"name": "physics"})
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"] == "the body is not valid JSON", error
        assert (await client.get("/api/v1/orgs")).json()["data"] == []


async def test_names_where_a_person_would_type_them(tmp_path: Path) -> None:
    """Issue #21, point 4: ``orgs/NAME``, ``teams/ORG/TEAM``, ``users/EMAIL`` (and members
    by email) reach the routes the ids reach; an unknown name is a 404."""
    async with running(make_settings(tmp_path)) as (_, client):
        org = (await client.post("/api/v1/orgs", json={"name": "acme"})).json()
        team = (await client.post(f"/api/v1/orgs/{org['id']}/teams", json={"name": "lab"})).json()
        user = (
            await client.post("/api/v1/users", json={"email": "ada@acme.org", "name": "Ada"})
        ).json()
        assert (await client.get("/api/v1/orgs/acme")).json()["id"] == org["id"]
        assert (await client.get("/api/v1/teams/acme/lab")).json()["id"] == team["id"]
        assert (await client.get("/api/v1/users/ada@acme.org")).json()["id"] == user["id"]
        patched = await client.patch("/api/v1/teams/acme/lab", content=b'{"limits": {"rpm": 60}}')
        assert patched.status_code == 200, patched.text
        assert patched.json()["limits"]["rpm"] == 60
        member = await client.put(
            "/api/v1/teams/acme/lab/members/ada@acme.org", json={"role": "member"}
        )
        assert member.status_code == 200, member.text
        assert member.json() == {"user_id": user["id"], "team_id": team["id"], "role": "member"}
        for unknown in ("/api/v1/orgs/nope", "/api/v1/teams/acme/nope", "/api/v1/users/x@y.z"):
            assert (await client.get(unknown)).status_code == 404, unknown
        audit = (await client.get("/api/v1/audit", params={"limit": 100})).json()["data"]
        assert {e["target_id"] for e in audit if e["action"] == "team.update"} == {team["id"]}
