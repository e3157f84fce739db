"""The Batches API in process: a batch runs every line once through the pipeline, with one
usage row each; malformed input is refused naming its lines; tenants see only their own."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client import generate_latest

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
    usage_rows,
)
from tests.integration.conftest import MASTER, make_settings


async def test_a_batch_runs_each_line_once_with_one_usage_row_each(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (app, client, files):
        auth, key_id = await key(client)
        data = jsonl([line(f"c{i}") for i in range(12)])
        file_id = await upload(files, principal(app, key_id), data)
        made = await create(client, file_id, auth, metadata={"job": "eval"})
        assert made.status_code == 200, made.text
        batch = made.json()
        assert batch["object"] == "batch"
        assert batch["status"] == "in_progress"
        assert batch["request_counts"] == {"total": 12, "completed": 0, "failed": 0}
        assert batch["metadata"] == {"job": "eval"}
        done = await until(client, batch["id"], headers=auth)
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 12, "completed": 12, "failed": 0}
        assert done["error_file_id"] is None
        assert done["completed_at"] >= done["in_progress_at"]
        out = lines_of(files, done["output_file_id"])
        assert sorted(o["custom_id"] for o in out) == sorted(f"c{i}" for i in range(12))
        assert all(o["response"]["status_code"] == 200 for o in out)
        assert all(o["response"]["body"]["object"] == "chat.completion" for o in out)
        assert files.records[done["output_file_id"]].key_id == key_id
        rows = await usage_rows(app, batch["id"])
        assert len(rows) == 12
        assert {r.request_id for r in rows} == {o["response"]["request_id"] for o in out}
        assert all(r.key_id == key_id and r.status == 200 for r in rows)
        logged = await client.get(f"/api/v1/analytics/requests/{rows[0].request_id}")
        assert logged.status_code == 200, logged.text
        assert logged.json()["batch_id"] == batch["id"]
        assert app.runtime is not None
        metrics = generate_latest(app.runtime.observability.metrics.registry).decode()
        assert 'sluice_batch_lines_total{outcome="completed"} 12.0' in metrics
        assert 'sluice_batches_ended_total{status="completed"} 1.0' in metrics
        assert "sluice_batch_lines_running 0.0" in metrics


async def test_failed_lines_go_to_the_error_file_with_their_usage_row(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (app, client, files):
        data = jsonl([line("good"), line("bad", model="refusing")])
        made = await create(client, await upload(files, None, data))
        assert made.status_code == 200, made.text
        done = await until(client, made.json()["id"])
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
        [good] = lines_of(files, done["output_file_id"])
        [bad] = lines_of(files, done["error_file_id"])
        assert good["custom_id"] == "good"
        assert bad["custom_id"] == "bad"
        assert bad["response"]["status_code"] == 400
        assert "error" in bad["response"]["body"]
        rows = await usage_rows(app, done["id"])
        assert sorted(r.status for r in rows) == [200, 400]


async def test_embeddings_lines(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (_, client, files):
        items = [
            {
                "custom_id": "e1",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "mock-embed", "input": "hello"},
            },
            {
                "custom_id": "e2",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "mock-embed", "input": "bye"},
            },
        ]
        file_id = await upload(files, None, jsonl(items))
        made = await create(client, file_id, endpoint="/v1/embeddings")
        assert made.status_code == 200, made.text
        done = await until(client, made.json()["id"])
        assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
        out = lines_of(files, done["output_file_id"])
        assert {o["custom_id"] for o in out} == {"e1", "e2"}
        assert all(len(o["response"]["body"]["data"][0]["embedding"]) == 4 for o in out)


async def test_malformed_input_is_refused_naming_each_line(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (_, client, files):
        data = b"\n".join(
            [
                b'{"custom_id": "ok", "method": "POST", "url": "/v1/chat/completions", '
                b'"body": {"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]}}',
                b"{not json",
                jsonl([{"method": "POST", "url": "/v1/chat/completions", "body": {}}]).strip(),
                jsonl([line("ok")]).strip(),
                jsonl([{**line("u"), "url": "/v1/embeddings"}]).strip(),
                jsonl([{**line("m"), "method": "GET"}]).strip(),
                jsonl([line("nomodel", model="nope")]).strip(),
                jsonl([line("s", stream=True)]).strip(),
                jsonl([line("t", max_tokens=-1)]).strip(),
            ]
        )
        file_id = await upload(files, None, data)
        refused = await create(client, file_id)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["param"] == "input_file_id"
        assert error["code"] == "invalid_batch_input"
        message = error["message"]
        assert "line 2: not valid JSON" in message
        assert "line 3: custom_id must be a non-empty string" in message
        assert "line 4 (custom_id 'ok'): custom_id already used on line 1" in message
        assert "line 5 (custom_id 'u'): url '/v1/embeddings'" in message
        assert "line 6 (custom_id 'm'): method must be 'POST'" in message
        assert "line 7 (custom_id 'nomodel'): the model 'nope' does not exist" in message
        assert "line 8 (custom_id 's'): stream must be false" in message
        assert "line 9 (custom_id 't'):" in message
        assert "line 1" not in message.replace("on line 1", "")
        listed = (await client.get("/v1/batches")).json()
        assert listed["data"] == []


async def test_bad_create_requests_name_their_field(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (_, client, files):
        file_id = await upload(files, None, jsonl([line("a")]))
        cases = [
            ({"input_file_id": 5}, "input_file_id"),
            ({"endpoint": "/v1/messages"}, "endpoint"),
            ({"completion_window": "1h"}, "completion_window"),
            ({"metadata": {"k": 1}}, "metadata"),
            ({"surprise": True}, "surprise"),
        ]
        for extra, param in cases:
            refused = await create(client, file_id, **extra)
            assert refused.status_code == 400, (extra, refused.text)
            assert refused.json()["error"]["param"] == param
        missing = await create(client, "file-nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["param"] == "input_file_id"
        empty = await upload(files, None, b"\n\n")
        assert (await create(client, empty)).status_code == 400
        unknown = await client.get("/v1/batches/batch_nope")
        assert unknown.status_code == 404
        assert (await client.delete("/v1/batches/x")).status_code == 405
        assert (await client.get("/v1/batchesx")).status_code == 404
        assert (await client.get("/v1/batches?limit=0")).status_code == 400
        assert (await client.get("/v1/batches?limit=x")).status_code == 400


async def test_limits_on_lines_size_and_active_batches(tmp_path: Path) -> None:
    config = CONFIG.replace(
        "poll_interval_s: 0.02",
        "poll_interval_s: 0.02\n  max_lines: 3\n  max_input_bytes: 2048\n"
        "  max_active_per_user: 1\n  concurrency_per_batch: 1",
    )
    async with gateway(make_settings(tmp_path), config) as (app, client, files):
        made = await client.post("/api/v1/users", json={"email": "a@example.org", "name": "a"})
        assert made.status_code == 201, made.text
        auth, key_id = await key(client, user_id=made.json()["id"])
        who = principal(app, key_id)
        four = await upload(files, who, jsonl([line(f"c{i}") for i in range(4)]))
        refused = await create(client, four, auth)
        assert refused.status_code == 400
        assert "more than 3 lines" in refused.json()["error"]["message"]
        big = await upload(files, who, jsonl([line("a", user="x" * 3000)]))
        assert (await create(client, big, auth)).status_code == 413
        slow = await upload(files, who, jsonl([line(f"c{i}", model="slow") for i in range(3)]))
        first = await create(client, slow, auth)
        assert first.status_code == 200, first.text
        second = await create(client, slow, auth)
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "too_many_active_batches"
        await until(client, first.json()["id"], headers=auth)
        assert (await create(client, slow, auth)).status_code == 200


async def test_another_tenant_gets_404_and_lists_only_its_own(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (app, client, files):
        users = []
        for name in ("a", "b"):
            made = await client.post(
                "/api/v1/users", json={"email": f"{name}@example.org", "name": name}
            )
            assert made.status_code == 201, made.text
            users.append(made.json()["id"])
        auth_a, key_a = await key(client, user_id=users[0])
        auth_a2, _ = await key(client, user_id=users[0])
        auth_b, key_b = await key(client, user_id=users[1])
        file_a = await upload(files, principal(app, key_a), jsonl([line("a")]))
        made = await create(client, file_a, auth_a)
        assert made.status_code == 200, made.text
        batch_id = made.json()["id"]
        # B cannot use A's file, read, cancel or list A's batch.
        assert (await create(client, file_a, auth_b)).status_code == 404
        assert (await client.get(f"/v1/batches/{batch_id}", headers=auth_b)).status_code == 404
        cancel = await client.post(f"/v1/batches/{batch_id}/cancel", headers=auth_b)
        assert cancel.status_code == 404
        assert (await client.get("/v1/batches", headers=auth_b)).json()["data"] == []
        # A's other key sees it (a user's keys share their batches); the admin sees it.
        assert (await client.get(f"/v1/batches/{batch_id}", headers=auth_a2)).status_code == 200
        assert [b["id"] for b in (await client.get("/v1/batches")).json()["data"]] == [batch_id]
        await until(client, batch_id, headers=auth_a)
        assert key_b != key_a


async def test_list_pages_newest_first(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (_, client, files):
        file_id = await upload(files, None, jsonl([line("a")]))
        ids = [(await create(client, file_id)).json()["id"] for _ in range(5)]
        first = (await client.get("/v1/batches?limit=2")).json()
        assert first["has_more"] is True
        seen = [b["id"] for b in first["data"]]
        after = first["last_id"]
        while True:
            page = (await client.get(f"/batches?limit=2&after={after}")).json()
            seen += [b["id"] for b in page["data"]]
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert sorted(seen) == sorted(ids)
        assert len(seen) == 5
        for batch_id in ids:
            await until(client, batch_id)


async def test_a_teams_service_accounts_share_their_batches(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (app, client, files):
        org = (await client.post("/api/v1/orgs", json={"name": "o"})).json()
        team_id = org["default_team_id"]
        made = await client.post(f"/api/v1/teams/{team_id}/service-accounts", json={"name": "ci"})
        assert made.status_code == 201, made.text
        sa = made.json()["id"]
        auth_1, key_1 = await key(client, service_account_id=sa)
        auth_2, _ = await key(client, service_account_id=sa)
        user = await client.post(
            "/api/v1/users", json={"email": "u@example.org", "name": "u", "team_id": team_id}
        )
        auth_u, _ = await key(client, user_id=user.json()["id"])
        file_id = await upload(files, principal(app, key_1), jsonl([line("a")]))
        batch_id = (await create(client, file_id, auth_1)).json()["id"]
        assert (await client.get(f"/v1/batches/{batch_id}", headers=auth_2)).status_code == 200
        assert (await client.get(f"/v1/batches/{batch_id}", headers=auth_u)).status_code == 404
        done = await until(client, batch_id, headers=auth_2)
        assert files.records[done["output_file_id"]].team_id == team_id


async def test_responses_and_completions_lines(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (app, client, files):
        for endpoint, body, kind in (
            ("/v1/responses", {"model": "mock-gpt", "input": "hi", "store": False}, "response"),
            ("/v1/completions", {"model": "mock-gpt", "prompt": "hi"}, "text_completion"),
        ):
            items = [
                {"custom_id": f"r{i}", "method": "POST", "url": endpoint, "body": body}
                for i in range(2)
            ]
            made = await create(client, await upload(files, None, jsonl(items)), endpoint=endpoint)
            assert made.status_code == 200, made.text
            done = await until(client, made.json()["id"])
            assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}, done
            out = lines_of(files, done["output_file_id"])
            assert {o["response"]["body"]["object"] for o in out} == {kind}
            rows = await usage_rows(app, done["id"])
            assert {r.endpoint for r in rows} == {endpoint.removeprefix("/v1/")}


async def test_the_openai_sdk_reads_and_cancels_batches(tmp_path: Path) -> None:
    async with gateway(make_settings(tmp_path)) as (app, client, files):
        async with openai.AsyncOpenAI(
            base_url="http://gw/v1",
            api_key=MASTER,
            http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app)),
            max_retries=0,
        ) as sdk:
            file_id = await upload(
                files, None, jsonl([line(f"c{i}", model="slow") for i in range(9)])
            )
            batch = await sdk.batches.create(
                input_file_id=file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"k": "v"},
            )
            assert batch.status == "in_progress"
            assert batch.request_counts is not None and batch.request_counts.total == 9
            got = await sdk.batches.retrieve(batch.id)
            assert got.id == batch.id and got.metadata == {"k": "v"}
            cancelled = await sdk.batches.cancel(batch.id)
            assert cancelled.status in ("cancelling", "finalizing", "cancelled")
            listed = [b.id async for b in sdk.batches.list(limit=1)]
            assert listed == [batch.id]
            with pytest.raises(openai.NotFoundError):
                await sdk.batches.retrieve("batch_nope")
            with pytest.raises(openai.BadRequestError):
                await sdk.batches.create(
                    input_file_id=file_id,
                    endpoint="/v1/chat/completions",
                    completion_window="1h",  # type: ignore[arg-type]
                )
        await until(client, batch.id)
