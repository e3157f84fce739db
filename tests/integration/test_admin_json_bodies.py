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
