"""Analytics through the admin API: scoping per role, breakdowns, series, the request log
(filters, cursor pagination), CSV export, bad parameters; body logging; ``/v1/usage``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import CONFIG, make_settings, running
from tests.integration.test_tenancy import CHAT, World, build_world

A = "/api/v1/analytics"


async def _chat(w: World, role: str, model: str = "mock-gpt", n: int = 1) -> list[str]:
    ids = []
    for _ in range(n):
        resp = await w.call(role, "POST", "/v1/chat/completions", {**CHAT, "model": model})
        ids.append(resp.headers["x-request-id"])
    return ids


async def _flush(app: SluiceApp) -> None:
    assert app.runtime is not None
    await app.runtime.usage.flush()


async def _get(w: World, role: str, path: str) -> dict[str, Any]:
    resp = await w.call(role, "GET", path)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_each_role_sees_its_own_share(tmp_path: Path) -> None:
    async with build_world(tmp_path) as w:  # the world already made one request as ua
        await _chat(w, "ua", n=2)
        await _chat(w, "ta", n=3)
        await _chat(w, "oa", n=1)
        await _chat(w, "ub", n=4)
        await _chat(w, "sa", n=2)
        await _flush(w.app)
        roles = ("admin", "oa", "ta", "ua", "ub")
        totals = {r: (await _get(w, r, f"{A}/summary"))["requests"] for r in roles}
        # ua: own 3; ub: own 4; ta: team A (ua 3 + ta 3 + oa 1 + sa 2) ; oa: org A, the same;
        # admin: everything. The service account's key has no user: only admins of its team.
        assert totals["ua"] == 3 and totals["ub"] == 4
        assert totals["ta"] == 9 and totals["oa"] == 9
        assert totals["admin"] == 13
        by_user = await _get(w, "oa", f"{A}/breakdown?by=user")
        users = {g["value"]: g["requests"] for g in by_user["data"]}
        assert users == {w.ids["ua"]: 3, w.ids["ta"]: 3, w.ids["oa"]: 1, None: 2}
        assert w.ids["ub"] not in users
        team = await _get(w, "ta", f"{A}/summary?scope=team:{w.ids['teamA']}")
        assert team["requests"] == 9
        one = await _get(w, "ta", f"{A}/summary?scope=user:{w.ids['ua']}")
        assert one["requests"] == 3
        # A filter never widens what a role sees.
        assert (await _get(w, "ua", f"{A}/summary?user_id={w.ids['ub']}"))["requests"] == 0
        assert (
            await w.call("ua", "GET", f"{A}/summary?scope=user:{w.ids['ub']}")
        ).status_code == 404
        assert (
            await w.call("ua", "GET", f"{A}/summary?scope=team:{w.ids['teamA']}")
        ).status_code == 403


async def test_summary_breakdown_and_series_agree(tmp_path: Path) -> None:
    async with build_world(tmp_path) as w:
        await _chat(w, "ua", n=3)
        await _chat(w, "ua", model="broken", n=2)
        await _flush(w.app)
        s = await _get(w, "ua", f"{A}/summary")
        assert s["requests"] == 6 and s["errors"] == 2
        assert s["error_rate"] == pytest.approx(2 / 6)
        assert s["input_tokens"] > 0 and s["latency_ms_p50"] is not None
        assert s["latency_ms_p50"] <= s["latency_ms_p95"]
        models = await _get(w, "ua", f"{A}/breakdown?by=model")
        assert {g["value"]: g["requests"] for g in models["data"]} == {"mock-gpt": 4, "broken": 2}
        assert not models["truncated"]
        cut = await _get(w, "ua", f"{A}/breakdown?by=model&limit=1")
        assert len(cut["data"]) == 1 and cut["truncated"]
        # Keys and users are ranked in the store: the same totals, the same flag.
        for by in ("key", "user"):
            whole = await _get(w, "ua", f"{A}/breakdown?by={by}")
            assert sum(g["requests"] for g in whole["data"]) == 6 and not whole["truncated"]
            top = await _get(w, "ua", f"{A}/breakdown?by={by}&limit=1")
            assert top["data"] == whole["data"][:1]
            assert top["truncated"] == (len(whole["data"]) > 1)
        for interval, points in (("day", 30), ("hour", 720)):
            series = await _get(w, "ua", f"{A}/series?interval={interval}")
            assert len(series["data"]) in (points, points + 1)
            assert sum(p["requests"] for p in series["data"]) == 6
            assert sum(p["input_tokens"] for p in series["data"]) == s["input_tokens"]
        only = await _get(w, "ua", f"{A}/summary?model=broken")
        assert only["requests"] == 2 and only["errors"] == 2


async def test_request_log_pages_filters_and_csv(tmp_path: Path) -> None:
    async with build_world(tmp_path) as w:
        ids = await _chat(w, "ua", n=6)
        broken = await _chat(w, "ua", model="broken", n=1)
        await _flush(w.app)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            path = f"{A}/requests?limit=3" + (f"&cursor={cursor}" if cursor else "")
            page = await _get(w, "ua", path)
            seen += [r["request_id"] for r in page["data"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        mine = {*ids, *broken, w.ids["req_ua"]}
        assert set(seen) == mine and len(seen) == len(mine) == 8 and pages == 3
        times = [r["created_at"] for r in (await _get(w, "ua", f"{A}/requests"))["data"]]
        assert times == sorted(times, reverse=True)
        errors = await _get(w, "ua", f"{A}/requests?status=error")
        assert [r["request_id"] for r in errors["data"]] == broken
        assert errors["data"][0]["status"] == 502
        assert (await _get(w, "ua", f"{A}/requests?status=502"))["data"][0]["request_id"] == broken[
            0
        ]
        assert len((await _get(w, "ua", f"{A}/requests?status=ok"))["data"]) == 7
        assert len((await _get(w, "ua", f"{A}/requests?model=broken"))["data"]) == 1
        assert (await _get(w, "ub", f"{A}/requests"))["data"] == []
        resp = await w.call("ua", "GET", f"{A}/requests.csv")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(resp.text)))
        assert {r["request_id"] for r in rows} == mine
        assert {r["status"] for r in rows} == {"200", "502"}
        detail = await _get(w, "ua", f"{A}/requests/{ids[0]}")
        assert detail["request_id"] == ids[0] and detail["body"] is None
        assert (await w.call("ub", "GET", f"{A}/requests/{ids[0]}")).status_code == 404
        assert (await w.call("ua", "GET", f"{A}/requests/req_nope")).status_code == 404


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("breakdown?by=colour", "by"),
        ("series?interval=minute", "interval"),
        ("summary?from=yesterday", "from"),
        ("summary?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", "from"),
        ("summary?from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", "from"),
        ("series?interval=hour&from=2029-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", "interval"),
        ("requests?status=teapot", "status"),
        ("requests?status=999", "status"),
        ("requests?cursor=not-a-cursor", "cursor"),
        ("requests?limit=0", "limit"),
        ("summary?scope=planet:earth", "scope"),
        ("summary?scope=team", "scope"),
        ("breakdown?by=model&limit=5000", "limit"),
        ("breakdown?by=key&limit=0", "limit"),
        ("breakdown?by=user&limit=-3", "limit"),
        ("breakdown?by=key&limit=ten", "limit"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    gateway: tuple[SluiceApp, httpx.AsyncClient], query: str, param: str
) -> None:
    _, client = gateway
    resp = await client.get(f"{A}/{query}")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


async def test_logged_bodies_are_redacted_and_shown_in_the_detail(tmp_path: Path) -> None:
    async with build_world(tmp_path / "w") as w:
        team = w.ids["teamA"]
        tokens = dict(w.tokens)
    config = (
        CONFIG
        + f"""
body_logging:
  teams: ["{team}"]
  max_bytes: 4096
  redact: ["secret-[0-9]+"]
"""
    )
    settings = make_settings(tmp_path / "w")
    async with running(settings, config) as (app, client):
        asked = {
            **CHAT,
            "messages": [
                {
                    "role": "user",
                    "content": "my key is sk-abcdefghijklmnop123 and Bearer abcdefghijk123 "
                    "see https://x.test/?key=hunter2&a=1 and secret-42",
                }
            ],
        }
        ua = {"Authorization": f"Bearer {tokens['ua']}"}
        resp = await client.post("/v1/chat/completions", json=asked, headers=ua)
        logged = resp.headers["x-request-id"]
        streamed = await client.post(
            "/v1/chat/completions", json={**CHAT, "stream": True}, headers=ua
        )
        ub = {"Authorization": f"Bearer {tokens['ub']}"}
        other = await client.post("/v1/chat/completions", json=CHAT, headers=ub)
        assert app.runtime is not None
        await app.runtime.usage.flush()
        detail = (await client.get(f"{A}/requests/{logged}")).json()
        assert detail["trace_id"] == resp.headers["x-sluice-trace-id"]
        assert 0 <= detail["upstream_ms"] <= detail["latency_ms"]
        body = detail["body"]
        assert body is not None and not body["truncated"]
        for secret in ("sk-abcdefghijklmnop123", "abcdefghijk123", "hunter2", "secret-42"):
            assert secret not in body["request"]
        assert "?key=[REDACTED]&a=1" in body["request"]
        assert '"choices"' in body["response"]
        stream = (await client.get(f"{A}/requests/{streamed.headers['x-request-id']}")).json()
        assert "data: " in stream["body"]["response"]
        unlogged = (await client.get(f"{A}/requests/{other.headers['x-request-id']}")).json()
        assert unlogged["body"] is None  # team B is not logged


PRICED = CONFIG.replace(
    "    deployments: [{provider: mock, model: chat}]",
    "    deployments: [{provider: mock, model: chat}]\n"
    "    prices: {input_usd_per_mtok: 1000, output_usd_per_mtok: 2000}",
    1,
)


async def test_v1_usage_reports_period_budgets_and_limits(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), PRICED) as (app, client):
        made = await client.post(
            "/api/v1/keys",
            json={
                "name": "metered",
                "limits": {"rpm": 10, "tpm_input": 100000, "max_parallel": 4},
                "budget": {"usd": 50, "period": "day"},
            },
        )
        assert made.status_code < 300, made.text
        key = {"Authorization": f"Bearer {made.json()['key']}"}
        for _ in range(2):
            assert (await client.post("/v1/chat/completions", json=CHAT, headers=key)).is_success
        assert app.runtime is not None
        await app.runtime.usage.flush()
        before = await app.runtime.storage.usage.count()
        resp = await client.get("/v1/usage", headers=key)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["period"]["name"] == "day"
        level = next(u for u in body["usage"] if u["level"] == "key")
        assert level["requests"] == 2 and level["input_tokens"] > 0
        budget = next(b for b in body["budgets"] if b["level"] == "key")
        assert budget["limit_usd"] == 50 and budget["spent_micros"] > 0
        assert budget["spent_micros"] == round(level["cost_usd"] * 1e6)
        assert budget["remaining_micros"] == 50_000_000 - budget["spent_micros"]
        limits = {(lim["level"], lim["name"]): lim for lim in body["limits"]}
        assert limits[("key", "rpm")]["limit"] == 10 and limits[("key", "rpm")]["remaining"] == 8
        assert limits[("key", "tpm_input")]["remaining"] < 100000
        assert limits[("key", "max_parallel")]["remaining"] == 4  # nothing in flight now
        month = (await client.get("/usage?period=month", headers=key)).json()
        assert month["period"]["name"] == "month"
        bad = await client.get("/v1/usage?period=year", headers=key)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "period"
        assert (
            await client.get("/v1/usage", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        await app.runtime.usage.flush()
        assert await app.runtime.storage.usage.count() == before  # /v1/usage writes no row
