"""The console while the terms of service are not accepted: only the terms page (and
sign-out) is open; the accept form is CSRF-protected; the Markdown is rendered safely."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.app import SluiceApp
from tests.console.support import browser, set_password, sign_in
from tests.integration.conftest import make_settings, running
from tests.integration.test_terms import terms_config


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[SluiceApp]:
    async with running(make_settings(tmp_path), terms_config("2026-12")) as (app, client):
        for email, admin in (("ada@example.org", False), ("root@example.org", True)):
            made = await client.post("/api/v1/users", json={"email": email, "name": email[:3]})
            assert made.status_code == 201, made.text
            await set_password(app, made.json()["id"])
            if admin:
                await client.put(f"/api/v1/users/{made.json()['id']}/admin")
        yield app


async def test_every_page_leads_to_the_terms_until_accepted(app: SluiceApp) -> None:
    async with browser(app) as b:
        signed = await sign_in(b, "ada@example.org")
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/keys"
        for path in ("/ui/keys", "/ui/usage?days=7", "/ui/account", "/ui/playground", "/ui/login"):
            resp = await b.client.get(path)
            assert resp.status_code == 303, path
            assert resp.headers["location"].startswith("/ui/terms?next=/ui/"), path
        refused = await b.client.post("/ui/keys", data={"name": "k"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "terms_not_accepted"

        page = await b.get("/ui/terms?next=/ui/usage")
        assert page.status_code == 200
        assert "House rules" in page.text and "Version 2026-12" in page.text
        assert ">Usage</a>" not in page.text  # no way around the page but sign-out
        assert 'action="/ui/logout"' in page.text

        # A form without this session's token is refused; a stale version too.
        forged = await b.client.post("/ui/terms", data={"version": "2026-12"})
        assert forged.status_code == 403 and "Form rejected" in forged.text
        stale = await b.post("/ui/terms", {"version": "2026-11", "next": "/ui/usage"})
        assert stale.status_code == 409 and "changed" in stale.text
        assert (await b.client.get("/ui/keys")).status_code == 303

        accepted = await b.post("/ui/terms", {"version": "2026-12", "next": "/ui/usage"})
        assert (
            accepted.status_code == 303 and accepted.headers["location"] == "/ui/usage?done=terms"
        )
        assert (await b.client.get("/ui/keys")).status_code == 200
        again = await b.get("/ui/terms")
        assert "You accepted version 2026-12" in again.text and ">Usage</a>" in again.text


async def test_sign_out_works_before_accepting(app: SluiceApp) -> None:
    async with browser(app) as b:
        await sign_in(b, "ada@example.org")
        await b.get("/ui/terms")
        out = await b.post("/ui/logout")
        assert out.status_code == 303
        after = await b.client.get("/ui/terms")
        assert after.status_code == 303 and after.headers["location"].startswith("/ui/login")


async def test_the_terms_render_as_markdown_without_raw_html_or_script_links(
    app: SluiceApp,
) -> None:
    async with browser(app) as b:
        await sign_in(b, "ada@example.org")
        page = (await b.get("/ui/terms")).text
        assert "<h1>House rules</h1>" in page
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert 'href="javascript:' not in page
        assert '<a href="https://example.org/terms">good</a>' in page


async def test_admins_see_who_accepted(app: SluiceApp) -> None:
    async with browser(app) as ada:
        await sign_in(ada, "ada@example.org")
        await ada.get("/ui/terms")
        assert (await ada.post("/ui/terms", {"version": "2026-12"})).status_code == 303
        assert (await ada.client.get("/ui/admin/terms")).status_code == 403
    async with browser(app) as root:
        await sign_in(root, "root@example.org")
        assert (await root.client.get("/ui/keys")).status_code == 200  # exempt admin
        users = (await root.get("/ui/admin/users")).text
        assert "Terms 2026-12" in users and "exempt" in users and "accepted 20" in users
        listing = (await root.get("/ui/admin/terms")).text
        assert "ada@example.org" in listing and "2026-12" in listing
        other = (await root.get("/ui/admin/terms?version=2025-01")).text
        assert "ada@example.org" not in other and "Nobody has accepted" in other
