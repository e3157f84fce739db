"""SSO tests against real OpenID Providers (``tests/idp.py``): ``main`` and ``other`` are
two IdP instances (for mix-up attacks), ``down`` names one that is not running."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urljoin

import httpx
import pytest

from tests.idp import AUDIENCE, CONSOLE_CLIENT, Idp, free_port, running_idp
from tests.integration.conftest import CONFIG

GW = "http://gw"
CALLBACKS = [f"{GW}/ui/sso/{name}/callback" for name in ("main", "other", "down")]
_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_PROMPT = re.compile(r'name="prompt" value="(\w+)"')


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    with running_idp(
        tmp_path_factory.mktemp("idp-main"),
        redirect_uris=CALLBACKS,
        post_logout_redirect_uris=[f"{GW}/ui/login"],
    ) as running:
        yield running


@pytest.fixture(scope="session")
def idp2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    """A second IdP; its ID tokens carry no e-mail (read from its userinfo endpoint)."""
    with running_idp(
        tmp_path_factory.mktemp("idp-other"),
        redirect_uris=CALLBACKS,
        claims_in_userinfo_only=True,
    ) as running:
        yield running


def sso_config(
    main: Idp,
    other: Idp | None = None,
    *,
    local_accounts: bool = True,
    api_key_id: str | None = None,
    other_links: bool = False,
    provisioning: str = "",
    default_org: str | None = "org-A",
) -> str:
    """The integration config plus an ``auth:`` block for the running IdPs.
    ``provisioning``: YAML of main's ``provisioning:`` block (at column 0)."""
    secret = CONSOLE_CLIENT[1]
    lines = [
        "auth:",
        f"  local_accounts: {'true' if local_accounts else 'false'}",
        "  oidc:",
        "    main:",
        "      display_name: Main IdP",
        f"      issuer: {main.issuer}",
        f"      client_id: {CONSOLE_CLIENT[0]}",
        f"      client_secret: {secret}",
        "      scopes: [openid, email, profile, groups]",
    ]
    if default_org is not None:
        lines += [f"      default_org: {default_org}"]
    if provisioning:
        lines += ["      provisioning:"]
        lines += [f"        {line}" for line in provisioning.strip().splitlines()]
    if api_key_id is not None:
        lines += [
            "      api_tokens:",
            f"        audience: {AUDIENCE}",
            "        claim: client_id",
            f"        principals: {{sluice-workload: {api_key_id}}}",
        ]
    if other is not None:
        lines += [
            "    other:",
            "      display_name: Other IdP",
            f"      issuer: {other.issuer}",
            f"      client_id: {CONSOLE_CLIENT[0]}",
            f"      client_secret: {secret}",
            f"      link_verified_email: {'true' if other_links else 'false'}",
        ]
    lines += [
        "    down:",
        "      display_name: Down IdP",
        f"      issuer: http://127.0.0.1:{free_port()}",
        "      client_id: nobody",
        "      timeout_s: 2",
    ]
    return CONFIG + "\n".join(lines) + "\n"


@pytest.fixture
async def idp_browser() -> AsyncIterator[httpx.AsyncClient]:
    """The browser's side at the IdP: its own cookies, redirects followed by hand."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def through_idp(
    browser: httpx.AsyncClient, authorize_url: str, *, login: str = "alice"
) -> str:
    """Drive the IdP from its authorization URL (login form, consent) until it sends the
    browser back to the gateway; returns that callback URL."""
    url = authorize_url
    for _ in range(12):
        if url.startswith(GW):
            return url
        resp = await browser.get(url)
        while resp.status_code == 200:
            action = _ACTION.search(resp.text)
            prompt = _PROMPT.search(resp.text)
            assert action and prompt, resp.text[:500]
            form = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                form |= {"login": login, "password": "any"}
            resp = await browser.post(urljoin(url, action.group(1)), data=form)
        assert resp.status_code in (302, 303), resp.text[:500]
        url = urljoin(url, resp.headers["location"])
    raise AssertionError("the IdP never sent the browser back")
