"""The console's Files page over HTTP: a person's files (uploaded in the console or with any
of their keys), a team admin's view of the team's service-account files, and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.console.support import Browser, console_world, signed_in
from tests.integration.conftest import CONFIG
from tests.integration.test_tenancy import World

FILES_CONFIG = CONFIG + "files: {max_file_bytes: 2048}\n"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with console_world(tmp_path, FILES_CONFIG) as w:
        yield w


async def upload(
    b: Browser, data: bytes, *, purpose: str = "batch", csrf: str | None = None
) -> httpx.Response:
    fields = {"csrf_token": b.csrf if csrf is None else csrf, "purpose": purpose}
    fields["expires_after[seconds]"] = ""
    return await b.client.post(
        "/ui/files", data=fields, files={"file": ("notes.jsonl", data, "application/jsonl")}
    )


async def api_files(world: World, who: str) -> list[str]:
    resp = await world.call(who, "GET", "/v1/files")
    assert resp.status_code == 200, resp.text
    return [f["id"] for f in resp.json()["data"]]


async def test_upload_download_delete_and_the_api_agrees(world: World) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        page = await b.get("/ui/files")
        assert page.status_code == 200 and "No files." in page.text
        assert 'href="/ui/files"' in page.text  # in the nav
        done = await upload(b, b'{"a": 1}\n')
        assert (
            done.status_code == 303 and done.headers["location"] == "/ui/files?done=file_uploaded"
        )
        [file_id] = await api_files(world, "ua")  # the person's keys see the console's upload
        page = await b.get("/ui/files")
        assert file_id in page.text and "notes.jsonl" in page.text and "9 B" in page.text
        got = await b.client.get(f"/ui/files/{file_id}/content")
        assert got.status_code == 200 and got.content == b'{"a": 1}\n'
        assert "attachment" in got.headers["content-disposition"]
        gone = await b.post(f"/ui/files/{file_id}/delete")
        assert gone.status_code == 303
        assert await api_files(world, "ua") == []


async def test_files_of_a_key_show_and_other_people_get_404(world: World) -> None:
    made = await world.client.post(
        "/v1/files",
        files={"file": ("k.txt", b"from a key")},
        data={"purpose": "user_data"},
        headers={"Authorization": f"Bearer {world.tokens['ua']}"},
    )
    file_id = made.json()["id"]
    async with signed_in(world.app, "ua@example.org") as b:
        assert file_id in (await b.get("/ui/files")).text
    async with signed_in(world.app, "ub@example.org") as b:
        assert file_id not in (await b.get("/ui/files")).text
        assert (await b.client.get(f"/ui/files/{file_id}/content")).status_code == 404
        assert (await b.post(f"/ui/files/{file_id}/delete")).status_code == 404
    assert await api_files(world, "ua") == [file_id]


async def test_a_team_admin_sees_the_team_service_account_files(world: World) -> None:
    made = await world.client.post(
        "/v1/files",
        files={"file": ("sa.jsonl", b"{}\n")},
        data={"purpose": "batch"},
        headers={"Authorization": f"Bearer {world.tokens['sa']}"},
    )
    file_id = made.json()["id"]
    team = world.ids["teamA"]
    async with signed_in(world.app, "ta@example.org") as b:
        page = (await b.get("/ui/files")).text
        assert "Service accounts' files" in page and f'value="{team}"' in page
        assert file_id not in page  # one team at a time, when asked
        page = (await b.get(f"/ui/files?team={team}")).text
        assert file_id in page and f"?team={team}" in page
        got = await b.client.get(f"/ui/files/{file_id}/content?team={team}")
        assert got.content == b"{}\n"
        assert (await b.client.get(f"/ui/files/{file_id}/content")).status_code == 404
    async with signed_in(world.app, "ua@example.org") as b:
        page = (await b.get("/ui/files")).text
        assert file_id not in page and "Service accounts' files" not in page
        assert (await b.get(f"/ui/files?team={team}")).status_code == 404
        assert (await b.client.get(f"/ui/files/{file_id}/content?team={team}")).status_code == 404
        assert (await b.client.get(f"/ui/files/{file_id}/content?team=nope")).status_code == 404
        assert (await b.post(f"/ui/files/{file_id}/delete?team={team}")).status_code == 404
    async with signed_in(world.app, "ta@example.org") as b:
        await b.get("/ui/files")
        deleted = await b.post(f"/ui/files/{file_id}/delete?team={team}")
        assert deleted.status_code == 303
        assert deleted.headers["location"] == f"/ui/files?team={team}&done=file_deleted"
    assert await api_files(world, "sa") == []


async def test_refusals_store_nothing(world: World) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        await b.get("/ui/files")
        forged = await upload(b, b"x", csrf="forged")
        assert forged.status_code == 403 and "security token" in forged.text
        bad = await upload(b, b"x", purpose="nonsense")
        assert bad.status_code == 400 and "is not one of" in bad.text
        big = await upload(b, b"x" * 2049)
        assert big.status_code == 413 and "larger than the limit" in big.text
        plain = await b.post("/ui/files", {"purpose": "batch"})
        assert plain.status_code == 400 and "multipart" in plain.text
    assert await api_files(world, "ua") == []
