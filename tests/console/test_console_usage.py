"""The Usage and Requests pages over HTTP: scoping by role (the same as the analytics API),
404 for another tenant's request by URL, inline errors for bad filters, pages, CSV,
budget burn-down."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.console import pages_requests
from tests.console.support import console_world, signed_in
from tests.integration.test_tenancy import CHAT, World


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with console_world(tmp_path) as w:
        other = await w.call("ub", "POST", "/v1/chat/completions", CHAT)
        assert other.status_code == 200
        w.ids["req_ub"] = other.headers["x-request-id"]
        await w.app.runtime.usage.flush()  # type: ignore[union-attr]
        yield w


def stat(page: str, name: str) -> str:
    found = re.search(rf"<span>{name}</span><strong>([^<]*)</strong>", page)
    assert found, f"no {name} card"
    return found.group(1)


def scopes(page: str) -> list[str]:
    form = page.split('name="scope"')[1].split("</select>", maxsplit=1)[0]
    return re.findall(r'<option value="([^"]+)"', form)


async def test_usage_and_requests_are_in_everyones_nav(world: World) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        page = (await b.get("/ui/keys")).text
        assert 'href="/ui/usage"' in page and 'href="/ui/requests"' in page


async def test_a_member_sees_only_their_own_usage_and_requests(world: World) -> None:
    ids = world.ids
    async with signed_in(world.app, "ua@example.org") as b:
        usage = await b.get("/ui/usage")
        assert usage.status_code == 200
        assert scopes(usage.text) == ["own"]
        assert stat(usage.text, "Requests") == "1"  # ua's request, not ub's
        assert (
            "mock-gpt" in usage.text and "Top keys" in usage.text and "Top users" not in usage.text
        )
        log = await b.get("/ui/requests")
        assert ids["req_ua"] in log.text and ids["req_ub"] not in log.text
        assert 'name="user_id"' not in log.text and 'name="team_id"' not in log.text
        assert (await b.get(f"/ui/requests/{ids['req_ua']}")).status_code == 200
        assert (await b.get(f"/ui/requests/{ids['req_ub']}")).status_code == 404
        for scope, status in (
            (f"team:{ids['teamA']}", 403),  # own team, not its admin
            (f"team:{ids['teamB']}", 404),  # another tenant's
            (f"org:{ids['orgA']}", 403),
            ("global", 403),
        ):
            for path in ("/ui/usage", "/ui/requests", "/ui/requests.csv"):
                resp = await b.get(f"{path}?scope={scope}")
                assert resp.status_code == status, (path, scope, resp.text[:300])
                assert ids["req_ub"] not in resp.text
                assert 'href="/ui/admin"' not in resp.text


async def test_a_team_admin_sees_their_team_and_nothing_else(world: World) -> None:
    ids = world.ids
    await world.call("ta", "POST", "/v1/chat/completions", CHAT)
    await world.app.runtime.usage.flush()  # type: ignore[union-attr]
    async with signed_in(world.app, "ta@example.org") as b:
        usage = await b.get("/ui/usage")
        assert scopes(usage.text) == [f"team:{ids['teamA']}", "own"]
        assert stat(usage.text, "Requests") == "2"  # ua's and ta's, the team's
        assert "Top users" in usage.text and "ua@example.org" in usage.text
        assert "ub@example.org" not in usage.text
        own = await b.get("/ui/usage?scope=own")
        assert stat(own.text, "Requests") == "1"
        log = await b.get("/ui/requests")
        assert ids["req_ua"] in log.text and ids["req_ub"] not in log.text
        assert 'name="user_id"' in log.text and 'name="team_id"' not in log.text
        assert (await b.get(f"/ui/requests/{ids['req_ua']}")).status_code == 200
        assert (await b.get(f"/ui/requests/{ids['req_ub']}")).status_code == 404
        assert (await b.get(f"/ui/usage?scope=team:{ids['teamB']}")).status_code == 404
        assert (await b.get(f"/ui/usage?scope=org:{ids['orgA']}")).status_code == 403


async def test_admins_see_everything_and_the_org_level(world: World) -> None:
    async with signed_in(world.app, "root@example.org") as b:
        usage = await b.get("/ui/usage")
        assert scopes(usage.text)[0] == "global"
        assert stat(usage.text, "Requests") == "2"
        assert "Top organisations" in usage.text and "org-A" in usage.text and "org-B" in usage.text
        org = await b.get(f"/ui/usage?scope=org:{world.ids['orgB']}")
        assert stat(org.text, "Requests") == "1" and "Top teams" in org.text


@pytest.mark.parametrize(
    ("path", "field", "words"),
    [
        ("/ui/requests?status=teapot", "status", "status must be ok, error"),
        ("/ui/requests?status=999", "status", "status must be ok, error"),
        ("/ui/requests?from=2026-13-01", "from", "from must be a date"),
        ("/ui/requests?from=2026-03-02&to=2026-03-01", "from", "from must be on or before to"),
        ("/ui/requests?key_id=nope", "key_id", "is not a key in this scope"),
        ("/ui/requests?cursor=%%%", "range", "cursor is not one this API returned"),
        ("/ui/usage?to=yesterday", "to", "to must be a date"),
        ("/ui/usage?from=2020-01-01&to=2026-01-01", "from", "longer than 800 days"),
    ],
)
async def test_a_bad_filter_is_shown_next_to_its_field(
    world: World, path: str, field: str, words: str
) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        resp = await b.get(path)
        assert resp.status_code == 400, resp.text[:300]
        assert words in resp.text
        assert f'id="err-{field}"' in resp.text
        assert 'name="scope"' in resp.text  # the form is there to fix it


async def test_another_persons_key_is_refused_as_a_filter(world: World) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        resp = await b.get(f"/ui/requests?key_id={world.ids['ub_key']}")
        assert resp.status_code == 400 and 'id="err-key_id"' in resp.text
        mine = await b.get(f"/ui/requests?key_id={world.ids['ua_key']}")
        assert mine.status_code == 200 and world.ids["req_ua"] in mine.text


async def test_filters_pages_and_detail(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(4):
        assert (await world.call("ua", "POST", "/v1/chat/completions", CHAT)).status_code == 200
    bad = {"model": "no-such-model", "messages": CHAT["messages"]}
    failed = await world.call("ua", "POST", "/v1/chat/completions", bad)
    assert failed.status_code >= 400
    await world.app.runtime.usage.flush()  # type: ignore[union-attr]
    monkeypatch.setattr(pages_requests, "PAGE_ROWS", 2)
    async with signed_in(world.app, "ua@example.org") as b:
        seen: list[str] = []
        page = await b.get("/ui/requests?range=7d")
        assert 'rel="prev"' not in page.text
        while True:
            ids = re.findall(r'href="/ui/requests/([^"]+)"', page.text)
            seen += ids
            nxt = re.search(r'href="/ui/requests\?([^"]+)" rel="next"', page.text)
            if not nxt:
                break
            page = await b.get("/ui/requests?" + nxt.group(1).replace("&amp;", "&"))
            assert 'rel="prev"' in page.text
        assert len(seen) == 6 == len(set(seen)) and world.ids["req_ua"] in seen
        prev = re.search(r'href="/ui/requests\?([^"]+)" rel="prev"', page.text)
        assert prev
        back = await b.get("/ui/requests?" + prev.group(1).replace("&amp;", "&"))
        assert re.findall(r'href="/ui/requests/([^"]+)"', back.text) == seen[2:4]

        monkeypatch.setattr(pages_requests, "PAGE_ROWS", 50)
        errors = await b.get("/ui/requests?status=error")
        assert len(re.findall(r'href="/ui/requests/([^"]+)"', errors.text)) == 1
        by_model = await b.get("/ui/requests?model=mock-gpt")
        assert len(re.findall(r'href="/ui/requests/([^"]+)"', by_model.text)) == 5
        none = await b.get("/ui/requests?model=other")
        assert "No requests match." in none.text

        detail = await b.get(f"/ui/requests/{failed.headers['x-request-id']}")
        assert detail.status_code == 200
        assert "no-such-model" in detail.text and "Refused before any upstream call." in detail.text
        ok = (await b.get(f"/ui/requests/{world.ids['req_ua']}")).text
        assert "Time to first token" in ok and "ua-key" in ok and "mock" in ok


async def test_csv_export_is_scoped(world: World) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        page = await b.get("/ui/usage")
        assert 'href="/ui/requests.csv?scope=own&amp;range=30d"' in page.text
        csv = await b.get("/ui/requests.csv?scope=own&range=30d")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.strip().splitlines()
        assert lines[0].startswith("request_id,created_at")
        assert len(lines) == 2 and lines[1].startswith(world.ids["req_ua"])
    async with signed_in(world.app, "ub@example.org") as b:
        other = await b.get("/ui/requests.csv")
        assert world.ids["req_ua"] not in other.text and world.ids["req_ub"] in other.text


async def test_signed_out_usage_pages_redirect_to_sign_in(world: World) -> None:
    for path in ("/ui/usage", "/ui/requests", f"/ui/requests/{world.ids['req_ua']}"):
        resp = await world.client.get(path)
        assert resp.status_code == 303 and "/ui/login" in resp.headers["location"]


async def test_burn_down_of_each_budget_on_the_scope(world: World) -> None:
    ids = world.ids
    await world.call(
        "admin", "PATCH", "/api/v1/teams/{teamA}", {"budget": {"usd": 5, "period": "month"}}
    )
    await world.call(
        "admin", "PATCH", "/api/v1/users/{ua}", {"budget": {"usd": 2, "period": "day"}}
    )
    async with signed_in(world.app, "ua@example.org") as b:
        own = (await b.get("/ui/usage")).text
        budgets = own.split('id="budgets"')[1]
        assert "You" in budgets and "$2 per day" in budgets and "Team team-A1" not in budgets
        assert 'id="chart-burn-user-' in budgets and "Budget $2.00" in budgets
    async with signed_in(world.app, "ta@example.org") as b:
        team = (await b.get(f"/ui/usage?scope=team:{ids['teamA']}")).text.split('id="budgets"')[1]
        assert "Team team-A1" in team and "$5 per month" in team
        assert "ua@example.org" in team  # a member's budget, one level down
    async with signed_in(world.app, "ub@example.org") as b:
        none = (await b.get("/ui/usage")).text
        assert "No budget is set on this scope" in none


async def test_the_usage_page_shows_cache_hits_and_savings(tmp_path: Path) -> None:
    from tests.integration.conftest import CONFIG

    cached = CONFIG + "cache: {enabled: true}\n"
    async with console_world(tmp_path, cached) as w:
        for _ in range(3):
            assert (await w.call("ta", "POST", "/v1/chat/completions", CHAT)).status_code == 200
        await w.app.runtime.usage.flush()  # type: ignore[union-attr]
        async with signed_in(w.app, "ta@example.org") as b:
            page = (await b.get("/ui/usage")).text
        section = page.split('id="cache"', 1)[1].split("</section>", 1)[0]
        assert "mock-gpt" in section and "team-A1" in section
        cells = re.findall(r'<td class="num">([^<]*)</td>', section)
        # ua's request (the world's) stored the answer for org A: ta's three are hits
        assert cells[:3] == ["4", "3", "75.0 %"]
        assert cells[3] == "$0.00"  # the mock has no price: nothing saved
