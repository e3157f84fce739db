"""Signing in to the console through a real OpenID Provider in Chromium: the button on the
sign-in page, the IdP's login form and consent, back to the console signed in; then sign-out
through the IdP's end-session page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.support import Gateway, start_gateway
from tests.idp import CONSOLE_CLIENT, Idp, running_idp

pytestmark = pytest.mark.ui

TO_SIGN_IN = re.compile(r".*/ui/login\?next=.*")

CONFIG = """\
providers:
  mock: {{type: mock}}
models:
  - name: mock-gpt
    deployments: [{{provider: mock, model: chat}}]
auth:
  oidc:
    uni:
      display_name: University login
      issuer: {issuer}
      client_id: {client_id}
      client_secret: {secret}
      scopes: [openid, email, profile, groups]
      default_org: acme-sso
"""


@pytest.fixture(scope="module")
def sso_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Idp]]:
    workdir = tmp_path_factory.mktemp("ui-sso")
    with running_idp(workdir / "idp", redirect_uris=[]) as idp:
        text = CONFIG.format(
            issuer=idp.issuer, client_id=CONSOLE_CLIENT[0], secret=CONSOLE_CLIENT[1]
        )
        gw = start_gateway(workdir / "gw", 0, 0, 0, config_text=text)
        try:
            idp.set_redirects([f"{gw.base_url}/ui/sso/uni/callback"], [f"{gw.base_url}/ui/login"])
            made = httpx.post(
                f"{gw.base_url}/api/v1/orgs",
                json={"name": "acme-sso"},
                headers={"Authorization": f"Bearer {gw.master_key}"},
                timeout=20,
            )
            assert made.status_code == 201, made.text
            yield gw, idp
        finally:
            gw.proc.terminate()


def test_sign_in_and_out_through_the_idp(
    chromium: Any, sso_gateway: tuple[Gateway, Idp], tmp_path: Path
) -> None:
    gw, idp = sso_gateway
    ctx = chromium.new_context(base_url=gw.base_url)
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        page.goto("/ui/usage")
        page.wait_for_url(TO_SIGN_IN)
        page.click("text=Sign in with University login")
        page.wait_for_url(f"{idp.issuer}/interaction/**")
        page.fill('input[name="login"]', "alice")
        page.fill('input[name="password"]', "any password")
        page.click('button:has-text("Sign-in")')
        page.click('button:has-text("Continue")')  # the IdP's consent
        page.wait_for_url("**/ui/usage")
        expect(page.locator("body")).to_contain_text("alice@example.edu")
        page.screenshot(path=str(tmp_path / "signed-in.png"))

        page.goto("/ui/account")
        page.click('button:has-text("Sign out")')
        page.wait_for_url(re.compile(re.escape(idp.issuer) + r"/session/end.*"))
        page.click('button:has-text("Yes, sign me out")')
        page.wait_for_url("**/ui/login")
        page.goto("/ui/keys")
        page.wait_for_url(TO_SIGN_IN)
    finally:
        ctx.close()
