"""Terms of service (``auth.terms``): keys of people who have not accepted the current version
answer 403 ``terms_not_accepted`` on every data-plane route until they accept in the console;
a new version asks again; admins are exempt when configured; service accounts always are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sluice.app import SluiceApp
from tests.console.support import browser, set_password, sign_in
from tests.integration.conftest import CONFIG, MASTER, make_settings, running

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


def terms_config(version: str = "v1", *, exempt_admins: bool = True) -> str:
    return CONFIG + (
        "auth:\n  terms:\n"
        f"    version: {version}\n"
        f"    exempt_admins: {str(exempt_admins).lower()}\n"
        '    text: "# House rules\\n\\nNo <script>alert(1)</script> abuse. '
        '[bad](javascript:alert(1)) [good](https://example.org/terms)"\n'
    )


@dataclass
class People:
    app: SluiceApp
    client: httpx.AsyncClient
    ids: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    async def call(self, who: str, method: str, path: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return await self.client.request(method, path, json=body, headers=headers)


async def _made(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def _people(app: SluiceApp, client: httpx.AsyncClient) -> People:
    """``ada`` (member of org A), ``root`` (admin), ``olga`` (org A's admin), ``bob`` (org
    B), and ``ci`` (a service account of team A), each with a key; people sign in with a
    password. Made once per database: a second run finds them."""
    p = People(app, client)
    p.keys["master"] = MASTER
    orgs = {}
    for name in ("A", "B"):
        orgs[name] = (await _made(await client.post("/api/v1/orgs", json={"name": name})))["id"]
    for name, org in (("ada", "A"), ("root", None), ("olga", "A"), ("bob", "B")):
        body = {"email": f"{name}@example.org", "name": name, "org_id": orgs.get(org or "")}
        user = await _made(await client.post("/api/v1/users", json=body))
        p.ids[name] = user["id"]
        await set_password(app, user["id"])
        key = await _made(
            await client.post("/api/v1/keys", json={"name": name, "user_id": user["id"]})
        )
        p.keys[name] = key["key"]
    assert (await client.put(f"/api/v1/users/{p.ids['root']}/admin")).status_code == 200
    assert (await client.put(f"/api/v1/orgs/{orgs['A']}/admins/{p.ids['olga']}")).status_code < 300
    team = (await client.get(f"/api/v1/orgs/{orgs['A']}")).json()["default_team_id"]
    sa = await _made(
        await client.post(f"/api/v1/teams/{team}/service-accounts", json={"name": "ci"})
    )
    key = await _made(
        await client.post("/api/v1/keys", json={"name": "ci", "service_account_id": sa["id"]})
    )
    p.keys["ci"] = key["key"]
    return p


@asynccontextmanager
async def gateway(
    tmp_path: Path, config: str, *, people: People | None = None
) -> AsyncIterator[People]:
    async with running(make_settings(tmp_path), config) as (app, client):
        if people is None:
            yield await _people(app, client)
        else:
            yield People(app, client, people.ids, people.keys)


async def _accept(app: SluiceApp, email: str) -> httpx.Response:
    async with browser(app) as b:
        assert (await sign_in(b, email)).status_code == 303
        page = await b.get("/ui/terms")
        assert page.status_code == 200
        version = page.text.split('name="version" value="', 1)[1].split('"', 1)[0]
        return await b.post("/ui/terms", {"version": version, "next": "/ui/keys"})


def _refused(resp: httpx.Response, version: str = "v1") -> None:
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "terms_not_accepted"
    assert error["type"] == "permission_error"
    assert f"version {version}" in error["message"] and "/ui" in error["message"]


async def test_every_data_plane_route_refuses_until_the_owner_accepts(tmp_path: Path) -> None:
    async with gateway(tmp_path, terms_config()) as p:
        _refused(await p.call("ada", "POST", "/v1/chat/completions", CHAT))
        _refused(
            await p.call("ada", "POST", "/v1/embeddings", {"model": "mock-embed", "input": "x"})
        )
        _refused(await p.call("ada", "POST", "/v1/responses", {"model": "mock-gpt", "input": "x"}))
        _refused(await p.call("ada", "GET", "/v1/models"))
        _refused(await p.call("ada", "GET", "/api/v1/users/me"))  # and the admin API
        messages = await p.client.post(
            "/v1/messages",
            json={"model": "mock-gpt", "max_tokens": 8, "messages": CHAT["messages"]},
            headers={
                "authorization": "",
                "x-api-key": p.keys["ada"],
                "anthropic-version": "2023-06-01",
            },
        )
        assert messages.status_code == 403
        body = messages.json()
        assert body["type"] == "error" and body["error"]["type"] == "permission_error"
        assert body["error"]["message"].startswith("terms_not_accepted:")
        # A wrong secret for the same key is still a 401: the terms reveal nothing.
        wrong = p.keys["ada"][:-4] + "abcd"
        assert (await p.call("ada", "GET", "/v1/models")).status_code == 403
        p.keys["guess"] = wrong
        assert (await p.call("guess", "GET", "/v1/models")).status_code == 401
        # Service accounts belong to no person; admins are exempt by default.
        assert (await p.call("ci", "POST", "/v1/chat/completions", CHAT)).status_code == 200
        assert (await p.call("root", "POST", "/v1/chat/completions", CHAT)).status_code == 200
        assert (await p.call("master", "GET", "/v1/models")).status_code == 200

        accepted = await _accept(p.app, "ada@example.org")
        assert accepted.status_code == 303 and accepted.headers["location"] == "/ui/keys?done=terms"
        # This process reloaded its key cache at once; another process follows the counter.
        assert (await p.call("ada", "POST", "/v1/chat/completions", CHAT)).status_code == 200
        assert (await p.call("ada", "GET", "/v1/models")).status_code == 200
        _refused(await p.call("bob", "GET", "/v1/models"))

        audit = (await p.call("master", "GET", "/api/v1/audit")).json()["data"]
        entry = next(e for e in audit if e["action"] == "terms.accept")
        assert entry["target_id"] == p.ids["ada"] and entry["after"] == {"version": "v1"}
        assert entry["actor"] == p.ids["ada"]


async def test_a_new_version_asks_again(tmp_path: Path) -> None:
    async with gateway(tmp_path, terms_config("v1")) as p:
        assert (await _accept(p.app, "ada@example.org")).status_code == 303
        assert (await p.call("ada", "GET", "/v1/models")).status_code == 200
    async with gateway(tmp_path, terms_config("v2"), people=p) as again:
        _refused(await again.call("ada", "GET", "/v1/models"), "v2")
        assert (await _accept(again.app, "ada@example.org")).status_code == 303
        assert (await again.call("ada", "GET", "/v1/models")).status_code == 200
        listed = (await again.call("master", "GET", "/api/v1/terms/acceptances")).json()["data"]
        assert [(a["email"], a["version"]) for a in listed] == [
            ("ada@example.org", "v2"),
            ("ada@example.org", "v1"),
        ]


async def test_admins_accept_too_when_not_exempt(tmp_path: Path) -> None:
    async with gateway(tmp_path, terms_config(exempt_admins=False)) as p:
        _refused(await p.call("root", "GET", "/v1/models"))
        assert (await p.call("master", "GET", "/v1/models")).status_code == 200  # no person
        assert (await p.call("ci", "GET", "/v1/models")).status_code == 200
        assert (await _accept(p.app, "root@example.org")).status_code == 303
        assert (await p.call("root", "GET", "/v1/models")).status_code == 200


async def test_another_process_follows_an_acceptance(tmp_path: Path) -> None:
    async with gateway(tmp_path, terms_config()) as p:
        settings = make_settings(tmp_path, key_refresh_interval_s=3600)
        async with running(settings, terms_config()) as (other, client):
            replica = People(other, client, p.ids, p.keys)
            _refused(await replica.call("ada", "GET", "/v1/models"))
            assert (await _accept(p.app, "ada@example.org")).status_code == 303
            assert other.control is not None
            await other.control.sync.refresh()  # what the poll or a Redis message triggers
            assert (await replica.call("ada", "GET", "/v1/models")).status_code == 200


async def test_the_admin_api_lists_who_accepted_what(tmp_path: Path) -> None:
    async with gateway(tmp_path, terms_config("2026-12")) as p:
        current = (await p.call("root", "GET", "/api/v1/terms")).json()
        assert current["version"] == "2026-12" and current["exempt_admins"] is True
        assert current["text"].startswith("# House rules")
        for email in ("ada@example.org", "bob@example.org"):
            assert (await _accept(p.app, email)).status_code == 303
        everyone = (await p.call("root", "GET", "/api/v1/terms/acceptances")).json()["data"]
        assert {a["user_id"] for a in everyone} == {p.ids["ada"], p.ids["bob"]}
        assert all(a["version"] == "2026-12" and a["accepted_at"] for a in everyone)
        none = await p.call("root", "GET", "/api/v1/terms/acceptances?version=2026-11")
        assert none.json()["data"] == []
        # Olga administers org A: she sees Ada, not Bob (she must accept first herself).
        _refused(await p.call("olga", "GET", "/api/v1/terms/acceptances"), "2026-12")
        assert (await _accept(p.app, "olga@example.org")).status_code == 303
        seen = (await p.call("olga", "GET", "/api/v1/terms/acceptances")).json()["data"]
        assert {a["user_id"] for a in seen} == {p.ids["ada"], p.ids["olga"]}
        one = await p.call("root", "GET", f"/api/v1/terms/acceptances?user_id={p.ids['bob']}")
        assert [a["email"] for a in one.json()["data"]] == ["bob@example.org"]
        members = await p.call("ada", "GET", "/api/v1/terms/acceptances")
        assert members.status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/terms", "/ui/terms"])
async def test_without_terms_nothing_is_gated(tmp_path: Path, path: str) -> None:
    async with gateway(tmp_path, CONFIG) as p:
        assert (await p.call("ada", "POST", "/v1/chat/completions", CHAT)).status_code == 200
        async with browser(p.app) as b:
            assert (await sign_in(b, "ada@example.org")).status_code == 303
            assert (await b.get("/ui/keys")).status_code == 200
            if path.startswith("/ui"):
                assert (await b.get(path)).status_code == 404
        if path.startswith("/api"):
            assert (await p.call("ada", "GET", path)).status_code == 404
