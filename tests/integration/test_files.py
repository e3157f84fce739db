"""The Files API with the official openai SDK, in process: upload, list, retrieve, content,
delete; ownership across keys, users and teams; bad input; quota and expiry."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from sluice.app import SluiceApp
from sluice.auth.principal import Principal
from sluice.clock import FakeClock
from tests.integration.conftest import CONFIG, MASTER, make_settings, running

FILES_CONFIG = CONFIG + "files: {max_file_bytes: 4096, quota_bytes: 10000}\n"
LINES = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'


@asynccontextmanager
async def gateway(
    tmp_path: Path, config: str = FILES_CONFIG, *, clock: FakeClock | None = None
) -> AsyncIterator[tuple[SluiceApp, openai.AsyncOpenAI, httpx.AsyncClient]]:
    async with running(make_settings(tmp_path), config, clock=clock) as (app, admin):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
        client = openai.AsyncOpenAI(
            api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
        )
        try:
            yield app, client, admin
        finally:
            await http.aclose()


@pytest.fixture
async def sdk(tmp_path: Path) -> AsyncIterator[tuple[SluiceApp, openai.AsyncOpenAI]]:
    async with gateway(tmp_path) as (app, client, _):
        yield app, client


async def _ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code < 300, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_upload_list_retrieve_content_delete(
    sdk: tuple[SluiceApp, openai.AsyncOpenAI], tmp_path: Path
) -> None:
    _, client = sdk
    made = await client.files.create(
        file=("input.jsonl", LINES),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert made.id.startswith("file-") and made.object == "file"
    assert (made.bytes, made.filename, made.purpose) == (len(LINES), "input.jsonl", "batch")
    assert made.expires_at == made.created_at + 7200
    assert (await client.files.retrieve(made.id)).model_dump() == made.model_dump()
    listed = await client.files.list()
    assert [f.id for f in listed.data] == [made.id]
    content = await client.files.content(made.id)
    assert content.content == LINES
    deleted = await client.files.delete(made.id)
    assert deleted.deleted and deleted.id == made.id
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        await client.files.content(made.id)
    assert os.listdir(tmp_path / "files") == []  # the bytes are gone too


async def test_pages_follow_the_cursor(sdk: tuple[SluiceApp, openai.AsyncOpenAI]) -> None:
    _, client = sdk
    ids = [
        (await client.files.create(file=(f"f{i}.txt", b"x"), purpose="user_data")).id
        for i in range(5)
    ]
    await client.files.create(file=("v.png", b"png"), purpose="vision")
    first = await client.files.list(limit=2, purpose="user_data", order="asc")
    assert len(first.data) == 2 and first.has_more
    seen = [f.id async for f in await client.files.list(limit=2, purpose="user_data", order="asc")]
    assert sorted(seen) == sorted(ids) and len(seen) == 5  # every page, each file once
    newest = await client.files.list(limit=10)
    assert len(newest.data) == 6 and not newest.has_more


async def test_owners_see_their_files_and_everyone_else_gets_404(tmp_path: Path) -> None:
    async with gateway(tmp_path) as (_, client, admin):
        org = await _ok(await admin.post("/api/v1/orgs", json={"name": "org"}))
        team = await _ok(await admin.post(f"/api/v1/orgs/{org['id']}/teams", json={"name": "data"}))
        keys: dict[str, str] = {}
        for person in ("ann", "bob"):
            user = await _ok(
                await admin.post(
                    "/api/v1/users",
                    json={"email": f"{person}@example.org", "name": person, "team_id": team["id"]},
                )
            )
            for n in (1, 2):
                key = await _ok(
                    await admin.post(
                        "/api/v1/keys", json={"name": f"{person}{n}", "user_id": user["id"]}
                    )
                )
                keys[f"{person}{n}"] = key["key"]
        sa = await _ok(
            await admin.post(f"/api/v1/teams/{team['id']}/service-accounts", json={"name": "ci"})
        )
        for n in (1, 2):
            key = await _ok(
                await admin.post(
                    "/api/v1/keys", json={"name": f"ci{n}", "service_account_id": sa["id"]}
                )
            )
            keys[f"ci{n}"] = key["key"]

        def as_(name: str) -> openai.AsyncOpenAI:
            return client.with_options(api_key=keys[name])

        anns = await as_("ann1").files.create(file=("a.jsonl", LINES), purpose="batch")
        teams = await as_("ci1").files.create(file=("t.jsonl", LINES), purpose="batch")
        assert (await as_("ann2").files.retrieve(anns.id)).id == anns.id  # any of her keys
        assert (await as_("ci2").files.retrieve(teams.id)).id == teams.id  # the team's keys
        for name, file_id in (("bob1", anns.id), ("ci1", anns.id), ("ann1", teams.id)):
            with pytest.raises(openai.NotFoundError):
                await as_(name).files.retrieve(file_id)
            with pytest.raises(openai.NotFoundError):
                await as_(name).files.content(file_id)
            with pytest.raises(openai.NotFoundError):
                await as_(name).files.delete(file_id)
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(anns.id)  # the master key is an owner of its own
        assert [f.id for f in (await as_("bob2").files.list()).data] == []
        assert [f.id for f in (await as_("ci2").files.list()).data] == [teams.id]
        with pytest.raises(openai.AuthenticationError):
            await client.with_options(api_key="sk-nope").files.list()


def _form(fields: dict[str, str], file: tuple[str, bytes] | None) -> dict[str, Any]:
    return {"data": fields, "files": {"file": file} if file is not None else None}


@pytest.mark.parametrize(
    ("fields", "file", "status", "param"),
    [
        ({"purpose": "batch"}, None, 400, "file"),
        ({}, ("a.jsonl", LINES), 400, "purpose"),
        ({"purpose": "nonsense"}, ("a.jsonl", LINES), 400, "purpose"),
        ({"purpose": "batch_output"}, ("a.jsonl", LINES), 400, "purpose"),
        ({"purpose": "batch"}, ("a.jsonl", b"x" * 4097), 413, "file"),
        ({"purpose": "batch"}, ("", LINES), 400, "file"),
        (
            {"purpose": "batch", "expires_after[anchor]": "last_active_at"},
            ("a.jsonl", LINES),
            400,
            "expires_after[anchor]",
        ),
        (
            {"purpose": "batch", "expires_after[anchor]": "created_at"},
            ("a.jsonl", LINES),
            400,
            "expires_after[seconds]",
        ),
        (
            {
                "purpose": "batch",
                "expires_after[anchor]": "created_at",
                "expires_after[seconds]": "60",
            },
            ("a.jsonl", LINES),
            400,
            "expires_after[seconds]",
        ),
    ],
)
async def test_bad_uploads_name_the_field(
    tmp_path: Path,
    fields: dict[str, str],
    file: tuple[str, bytes] | None,
    status: int,
    param: str,
) -> None:
    async with gateway(tmp_path) as (_, __, admin):
        if file is None:  # httpx sends a form without files as urlencoded: force multipart
            resp = await admin.post(
                "/v1/files", data=fields, files={"other": ("x", b"1", "text/plain")}
            )
        else:
            resp = await admin.post("/v1/files", **_form(fields, file))
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["param"] == param
        if (tmp_path / "files").exists():
            assert os.listdir(tmp_path / "files") == []  # nothing of the upload is kept
        listed = await _ok(await admin.get("/v1/files"))
        assert listed["data"] == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"purpose=batch", "application/x-www-form-urlencoded"),
        (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nab', None),
        (b"garbage", None),
        (b"--b\r\nX: y\r\n\r\nab\r\n--b--\r\n", None),
    ],
)
async def test_malformed_bodies_are_400(
    tmp_path: Path, body: bytes, content_type: str | None
) -> None:
    async with gateway(tmp_path) as (_, __, admin):
        resp = await admin.post(
            "/files",
            content=body,
            headers={"content-type": content_type or "multipart/form-data; boundary=b"},
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["param"] == "file"


def _raw_form(*parts: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return body + b"--b--\r\n"


async def test_the_purpose_may_follow_the_file(tmp_path: Path) -> None:
    headers = {"content-type": "multipart/form-data; boundary=b"}
    async with gateway(tmp_path) as (_, __, admin):
        bad = _raw_form(("file", "a.jsonl", LINES), ("purpose", None, b"nope"))
        resp = await admin.post("/v1/files", content=bad, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "purpose"
        assert os.listdir(tmp_path / "files") == []  # the bytes read before it are deleted
        good = _raw_form(
            ("ignored", None, b"x"), ("file", "a.jsonl", LINES), ("purpose", None, b"batch")
        )
        made = await _ok(await admin.post("/v1/files", content=good, headers=headers))
        assert (made["bytes"], made["purpose"]) == (len(LINES), "batch")
        twice = _raw_form(("file", "a", b"1"), ("file", "b", b"2"), ("purpose", None, b"batch"))
        resp = await admin.post("/v1/files", content=twice, headers=headers)
        assert resp.status_code == 400 and "one file" in resp.json()["error"]["message"]
        declared = await admin.post(
            "/v1/files", content=good, headers={**headers, "content-length": str(10**9)}
        )
        assert declared.status_code == 413


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("limit=10001", "limit"),
        ("order=up", "order"),
        ("after=file-nope", "after"),
    ],
)
async def test_bad_list_queries_name_the_field(tmp_path: Path, query: str, param: str) -> None:
    async with gateway(tmp_path) as (_, __, admin):
        resp = await admin.get(f"/v1/files?{query}")
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["param"] == param


async def test_routes_and_methods(tmp_path: Path) -> None:
    async with gateway(tmp_path) as (_, __, admin):
        assert (await admin.put("/v1/files")).status_code == 405
        assert (await admin.post("/v1/files/file-x")).status_code == 405
        assert (await admin.get("/v1/filesystem")).status_code == 404
        assert (await admin.get("/v1/files/file-x/other")).status_code == 404
        assert (await admin.get("/v1/files/" + "x" * 100)).status_code == 404


async def test_the_quota_refuses_and_a_delete_makes_room(tmp_path: Path) -> None:
    async with gateway(tmp_path) as (_, client, __):
        kept = [
            await client.files.create(file=(f"{i}.bin", b"x" * 4000), purpose="user_data")
            for i in range(2)
        ]
        with pytest.raises(openai.APIStatusError) as info:
            await client.files.create(file=("3.bin", b"x" * 2001), purpose="user_data")
        assert info.value.status_code == 413
        assert info.value.body["code"] == "quota_exceeded"  # type: ignore[index]
        assert len((await client.files.list()).data) == 2
        await client.files.delete(kept[0].id)
        await client.files.create(file=("3.bin", b"x" * 2001), purpose="user_data")


async def test_expired_files_vanish_and_the_cleanup_deletes_them(tmp_path: Path) -> None:
    clock = FakeClock()
    config = FILES_CONFIG.replace("quota_bytes: 10000", "quota_bytes: 10000, default_expiry_s: 600")
    async with gateway(tmp_path, config, clock=clock) as (app, client, __):
        short = await client.files.create(file=("a.txt", b"a"), purpose="user_data")
        long = await client.files.create(
            file=("b.txt", b"b"),
            purpose="user_data",
            expires_after={"anchor": "created_at", "seconds": 3600},
        )
        assert short.expires_at == short.created_at + 600  # the configured default
        clock.advance(601)
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(short.id)
        assert [f.id for f in (await client.files.list()).data] == [long.id]
        assert app.control is not None
        assert await app.control.files.purge_expired() == 1
        assert os.listdir(tmp_path / "files") == [long.id]
        clock.advance(3600)
        assert await app.control.files.purge_expired() == 1
        assert os.listdir(tmp_path / "files") == []


async def test_what_the_batch_worker_reads_and_writes(tmp_path: Path) -> None:
    async with gateway(tmp_path) as (app, client, __):
        assert app.control is not None
        access = app.control.files
        master = Principal(key_id="master", name="master key", is_admin=True)
        made = await client.files.create(file=("in.jsonl", LINES), purpose="batch")
        assert await access.read(master, made.id, max_bytes=len(LINES)) == LINES
        with pytest.raises(Exception, match="limit") as info:
            await access.read(master, made.id, max_bytes=len(LINES) - 1)
        assert getattr(info.value, "status", None) == 413
        stranger = Principal(key_id="k-other", name="other")
        with pytest.raises(Exception, match="No such File") as missing:
            await access.read(stranger, made.id, max_bytes=100)
        assert getattr(missing.value, "status", None) == 404
        big = b"y" * 5000  # over the upload cap: the gateway's own output is not refused
        out = await access.create(master, purpose="batch_output", filename="out.jsonl", data=big)
        assert out.purpose == "batch_output" and out.bytes == 5000
        assert (await client.files.content(out.id)).content == big


async def test_a_download_stops_reading_when_the_client_leaves(tmp_path: Path) -> None:
    async with gateway(tmp_path, CONFIG) as (app, client, __):
        made = await client.files.create(
            file=("big.bin", os.urandom(2 * 1024 * 1024)), purpose="user_data"
        )
        sent: list[dict[str, Any]] = []
        first = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body":
                first.set()
                await asyncio.Event().wait()  # the client reads no more

        async def receive() -> dict[str, Any]:
            await first.wait()
            return {"type": "http.disconnect"}

        scope = {
            "type": "http",
            "method": "GET",
            "path": f"/v1/files/{made.id}/content",
            "query_string": b"",
            "headers": [(b"authorization", f"Bearer {MASTER}".encode())],
        }
        async with asyncio.timeout(10):
            await app(scope, receive, send)  # returns once the watch sees the client leave
        bodies = [m for m in sent if m["type"] == "http.response.body"]
        assert sent[0]["status"] == 200 and len(bodies) == 1 and bodies[0]["more_body"]


async def test_a_drain_waits_for_an_upload_then_cuts_it_at_its_deadline(tmp_path: Path) -> None:
    async with gateway(tmp_path, CONFIG) as (app, _, __):
        head = (
            b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\npartial'
        )
        started = asyncio.Event()
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if not started.is_set():
                started.set()
                return {"type": "http.request", "body": head, "more_body": True}
            await asyncio.Event().wait()  # a client that stalls mid-upload
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/files",
            "query_string": b"",
            "headers": [
                (b"authorization", f"Bearer {MASTER}".encode()),
                (b"content-type", b"multipart/form-data; boundary=b"),
            ],
        }
        async with asyncio.timeout(10), asyncio.TaskGroup() as group:
            upload = group.create_task(app(scope, receive, send))
            await started.wait()
            await app._life.drain(grace_s=0.05)  # what SIGTERM starts
            await upload
        assert sent[0]["status"] == 503
        assert b"shutting_down" in sent[1]["body"]
        assert os.listdir(tmp_path / "files") == []  # the partial upload is gone


@pytest.mark.postgres
async def test_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url)
    async with running(settings, FILES_CONFIG) as (app, _):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
        client = openai.AsyncOpenAI(
            api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
        )
        try:
            made = [
                await client.files.create(file=(f"{i}.bin", b"x" * 4000), purpose="batch")
                for i in range(2)
            ]
            with pytest.raises(openai.APIStatusError) as info:
                await client.files.create(file=("3.bin", b"x" * 2001), purpose="batch")
            assert info.value.status_code == 413
            page = await client.files.list(limit=1, order="asc")
            assert [f.id for f in page.data] == [min(f.id for f in made)] and page.has_more
            assert made[0].id < made[1].id  # ids sort by creation
            assert (await client.files.content(made[1].id)).content == b"x" * 4000
            await client.files.delete(made[0].id)
            assert [f.id for f in (await client.files.list()).data] == [made[1].id]
        finally:
            await http.aclose()
