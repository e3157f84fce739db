"""The console's Batches page: a person sees their own batches with progress, downloads
their files and cancels; another person sees none of it; an admin sees every batch."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.batches.support import (
    CONFIG,
    create,
    gateway,
    jsonl,
    key,
    line,
    lines_of,
    principal,
    until,
    upload,
)
from tests.console.support import set_password, signed_in
from tests.integration.conftest import make_settings


async def _person(client: httpx.AsyncClient, name: str) -> str:
    made = await client.post("/api/v1/users", json={"email": f"{name}@example.org", "name": name})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_batches_page_is_scoped_and_offers_files_and_cancel(tmp_path: Path) -> None:
    config = CONFIG.replace(
        "poll_interval_s: 0.02", "poll_interval_s: 0.02\n  concurrency_per_batch: 1"
    )
    async with gateway(make_settings(tmp_path), config) as (app, client, files):
        ids = {name: await _person(client, name) for name in ("ua", "ub", "root")}
        assert (await client.put(f"/api/v1/users/{ids['root']}/admin")).status_code < 300
        for user_id in ids.values():
            await set_password(app, user_id)
        auth, key_id = await key(client, user_id=ids["ua"])
        who = principal(app, key_id)
        quick = await create(client, await upload(files, who, jsonl([line("a")])), auth)
        quick_id = quick.json()["id"]
        done = await until(client, quick_id, headers=auth)
        slow_data = jsonl([line(f"s{i}", model="slow") for i in range(30)])
        slow_id = (await create(client, await upload(files, who, slow_data), auth)).json()["id"]

        async with signed_in(app, "ua@example.org") as ua:
            page = await ua.get("/ui/batches")
            assert page.status_code == 200
            assert quick_id in page.text and slow_id in page.text
            assert '<progress value="1" max="1"' in page.text
            assert f"/ui/batches/{quick_id}/output.jsonl" in page.text
            got = await ua.get(f"/ui/batches/{quick_id}/output.jsonl")
            assert got.status_code == 200
            assert got.content == files.data[done["output_file_id"]]
            assert lines_of(files, done["output_file_id"])[0]["custom_id"] == "a"
            assert (await ua.get(f"/ui/batches/{quick_id}/errors.jsonl")).status_code == 404
            cancelled = await ua.post(f"/ui/batches/{slow_id}/cancel")
            assert cancelled.status_code == 303
        ended = await until(client, slow_id, headers=auth)
        assert ended["status"] == "cancelled"

        async with signed_in(app, "ub@example.org") as ub:
            page = await ub.get("/ui/batches")
            assert quick_id not in page.text
            assert "No batches yet." in page.text
            assert (await ub.get(f"/ui/batches/{quick_id}/output.jsonl")).status_code == 404
            assert (await ub.post(f"/ui/batches/{quick_id}/cancel")).status_code == 404

        async with signed_in(app, "root@example.org") as root:
            page = await root.get("/ui/batches")
            assert quick_id in page.text and slow_id in page.text
