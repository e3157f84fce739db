"""Console sign-in over HTTP: cookies, CSRF, throttling, sign-out, password changes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.app import SluiceApp
from sluice.console.sessions import COOKIE
from tests.console.support import PASSWORD, browser, csrf_of, set_password, sign_in, signed_in
from tests.integration.conftest import make_settings, running

EMAIL = "ada@example.org"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[SluiceApp]:
    async with running(make_settings(tmp_path, console_trust_proxy_headers=True)) as (app, c):
        made = await c.post("/api/v1/users", json={"email": EMAIL, "name": "Ada"})
        assert made.status_code == 201, made.text
        app.state_user_id = made.json()["id"]  # type: ignore[attr-defined]
        await set_password(app, made.json()["id"])
        yield app


async def test_root_and_ui_lead_to_the_sign_in_form(app: SluiceApp) -> None:
    async with browser(app) as b:
        root = await b.client.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui"
        keys = await b.client.get("/ui/keys")
        assert keys.status_code == 303
        assert keys.headers["location"] == "/ui/login?next=/ui/keys"
        form = await b.client.get("/ui/login")
        assert form.status_code == 200 and 'name="password"' in form.text
        assert "frame-ancestors 'none'" in form.headers["content-security-policy"]


async def test_sign_in_sets_a_hardened_cookie_and_lands_on_keys(app: SluiceApp) -> None:
    async with browser(app) as b:
        resp = await sign_in(b, EMAIL)
        assert resp.status_code == 303 and resp.headers["location"] == "/ui/keys"
        cookie = resp.headers["set-cookie"].lower()
        assert cookie.startswith(f"{COOKIE}=")
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/ui" in cookie
        assert "secure" not in cookie  # plain http, no proxy header
        page = await b.client.get("/ui/keys")
        assert page.status_code == 200 and EMAIL in page.text


async def test_cookies_are_secure_over_https_and_behind_a_trusted_proxy(app: SluiceApp) -> None:
    async with browser(app, **{"x-forwarded-proto": "https"}) as proxied:
        form = await proxied.client.get("/ui/login")
        assert "secure" in form.headers["set-cookie"].lower()
    async with browser(app, base_url="https://gw") as b:
        resp = await sign_in(b, EMAIL)
        assert resp.status_code == 303
        assert "secure" in resp.headers["set-cookie"].lower()


async def test_wrong_password_and_unknown_account_answer_the_same(app: SluiceApp) -> None:
    async with browser(app) as b:
        wrong = await sign_in(b, EMAIL, "not the password")
        unknown = await sign_in(b, "nobody@example.org", "not the password")
        assert wrong.status_code == unknown.status_code == 400
        assert "do not match an active account" in wrong.text
        assert "do not match an active account" in unknown.text
        assert COOKIE not in wrong.headers.get("set-cookie", "")


async def test_login_is_throttled_per_account(app: SluiceApp) -> None:
    async with browser(app) as b:
        for _ in range(5):
            assert (await sign_in(b, EMAIL, "wrong password!")).status_code == 400
        blocked = await sign_in(b, EMAIL)  # even the right password waits now
        assert blocked.status_code == 429
        assert "Too many failed sign-ins" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0


async def test_login_is_throttled_per_client_address(app: SluiceApp) -> None:
    async with browser(app, **{"x-forwarded-for": "203.0.113.9"}) as b:
        for n in range(5):
            assert (await sign_in(b, f"guess{n}@example.org", "x" * 12)).status_code == 400
        assert (await sign_in(b, EMAIL)).status_code == 429
    async with browser(app, **{"x-forwarded-for": "203.0.113.10"}) as other:
        assert (await sign_in(other, EMAIL)).status_code == 303


async def test_login_form_needs_its_csrf_cookie(app: SluiceApp) -> None:
    async with browser(app) as b:
        page = await b.client.get("/ui/login")
        token = csrf_of(page.text)
        b.client.cookies.clear()
        resp = await b.client.post(
            "/ui/login", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD}
        )
        assert resp.status_code == 403 and "CSRF" in resp.text


async def test_posts_without_or_with_a_wrong_csrf_token_are_refused(app: SluiceApp) -> None:
    async with signed_in(app, EMAIL) as b:
        missing = await b.client.post("/ui/keys", data={"name": "k"})
        wrong = await b.client.post("/ui/keys", data={"name": "k", "csrf_token": "forged"})
        header = await b.client.post(
            "/ui/keys", data={"name": "k"}, headers={"x-csrf-token": "forged"}
        )
        for resp in (missing, wrong, header):
            assert resp.status_code == 403 and "CSRF" in resp.text
        assert app.runtime is not None
        assert [r for r in await app.runtime.storage.keys.list() if r.name == "k"] == []
        ok = await b.client.post("/ui/keys", data={"name": "k"}, headers={"x-csrf-token": b.csrf})
        assert ok.status_code == 201


async def test_logout_deletes_the_session_on_the_server(app: SluiceApp) -> None:
    async with signed_in(app, EMAIL) as b:
        token = b.client.cookies[COOKIE]
        out = await b.post("/ui/logout")
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        # Replay the old cookie (the jar files host "gw" under "gw.local").
        b.client.cookies.set(COOKIE, token, domain="gw.local", path="/ui")
        again = await b.client.get("/ui/keys")
        assert again.status_code == 303 and again.headers["location"].startswith("/ui/login")
        assert again.request.headers["cookie"] == f"{COOKIE}={token}"


async def test_sign_out_tells_the_browser_to_drop_what_pages_stored(app: SluiceApp) -> None:
    async with signed_in(app, EMAIL) as b:
        out = await b.post("/ui/logout")
        assert out.headers["clear-site-data"] == '"storage"'
        assert f'{COOKIE}=""' in out.headers["set-cookie"]  # deleted
        form = await b.client.get("/ui/login")  # nobody is signed in: the page says so
        assert '<meta name="sluice-session" content="">' in form.text
        assert "clear-site-data" not in form.headers  # no session cookie came with it


async def test_a_dead_sessions_cookie_is_answered_with_clear_site_data(app: SluiceApp) -> None:
    async with signed_in(app, EMAIL) as b:
        token = b.client.cookies[COOKIE]
    assert app.runtime is not None
    user_id = app.state_user_id  # type: ignore[attr-defined]
    await app.runtime.storage.console.delete_user_sessions(user_id)  # as if it expired
    for path, status in (("/ui/playground", 303), ("/ui/session.json", 401), ("/ui/login", 200)):
        async with browser(app) as stale:
            stale.client.cookies.set(COOKIE, token, domain="gw.local", path="/ui")
            resp = await stale.client.get(path)
            assert resp.status_code == status
            assert resp.headers["clear-site-data"] == '"storage"'
            assert f'{COOKIE}=""' in resp.headers["set-cookie"]
    async with browser(app) as stranger:
        assert "clear-site-data" not in (await stranger.client.get("/ui/keys")).headers


async def test_pages_name_their_session_as_session_json_does(app: SluiceApp) -> None:
    scopes = []
    for _ in range(2):
        async with signed_in(app, EMAIL) as b:
            page = await b.get("/ui/playground")
            found = re.search(
                r'<meta name="sluice-session" content="(\w+)" data-left-s="(\d+)">', page.text
            )
            assert found, page.text[:500]
            state = await b.client.get("/ui/session.json")
            assert state.status_code == 200 and state.headers["cache-control"] == "no-store"
            assert state.json()["scope"] == found.group(1)
            assert 0 < state.json()["expires_in_s"] <= 8 * 3600
            assert b.client.cookies[COOKIE] not in page.text
            scopes.append(found.group(1))
            await b.post("/ui/logout")
            assert (await b.client.get("/ui/session.json")).status_code == 401
    assert scopes[0] != scopes[1]


async def test_open_redirects_are_not_followed(app: SluiceApp) -> None:
    async with browser(app) as b:
        page = await b.client.get("/ui/login?next=//evil.example/")
        token = csrf_of(page.text)
        resp = await b.client.post(
            "/ui/login",
            data={
                "csrf_token": token,
                "email": EMAIL,
                "password": PASSWORD,
                "next": "//evil.example/",
            },
        )
        assert resp.headers["location"] == "/ui/keys"


async def test_password_change_signs_out_other_sessions(app: SluiceApp) -> None:
    async with signed_in(app, EMAIL) as first, signed_in(app, EMAIL) as second:
        await first.get("/ui/account")
        short = await first.post(
            "/ui/account/password",
            {"current_password": PASSWORD, "password": "short", "password_again": "short"},
        )
        assert short.status_code == 400 and "at least 10 characters" in short.text
        changed = await first.post(
            "/ui/account/password",
            {
                "current_password": PASSWORD,
                "password": "a much longer one",
                "password_again": "a much longer one",
            },
        )
        assert changed.status_code == 303
        assert (await first.client.get("/ui/keys")).status_code == 200
        assert (await second.client.get("/ui/keys")).status_code == 303
    async with browser(app) as b:
        assert (await sign_in(b, EMAIL, "a much longer one")).status_code == 303


async def test_a_disabled_user_is_signed_out(app: SluiceApp) -> None:
    async with signed_in(app, EMAIL) as b, browser(app) as api:
        user_id = app.state_user_id  # type: ignore[attr-defined]
        resp = await api.client.patch(
            f"/api/v1/users/{user_id}",
            json={"disabled": True},
            headers={"Authorization": "Bearer test-master-key"},
        )
        assert resp.status_code == 200
        assert (await b.client.get("/ui/keys")).status_code == 303
        assert (await sign_in(b, EMAIL)).status_code == 400
