"""A person signing in through the identity provider meets the terms of service first, and
lands where they were going once they accept."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.sso.conftest import Idp, sso_config, through_idp
from tests.sso.test_console_sso import gateway, start

TERMS = "  terms:\n    version: '2026-12'\n    text: '# Rules'\n    exempt_admins: false\n"


async def test_a_first_sign_in_goes_through_the_terms(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp) + TERMS) as (_, browser):
        callback = await through_idp(idp_browser, await start(browser, next_path="/ui/usage"))
        done = await browser.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/ui/usage"
        usage = await browser.get("/ui/usage")
        assert usage.status_code == 303
        assert usage.headers["location"] == "/ui/terms?next=/ui/usage"
        page = await browser.get(usage.headers["location"])
        assert page.status_code == 200 and "<h1>Rules</h1>" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        accepted = await browser.post(
            "/ui/terms",
            data={"csrf_token": csrf.group(1), "version": "2026-12", "next": "/ui/usage"},
        )
        assert accepted.status_code == 303
        assert accepted.headers["location"] == "/ui/usage?done=terms"
        assert (await browser.get("/ui/usage")).status_code == 200
