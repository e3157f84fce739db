"""Console sign-in through a real OpenID Provider, and every way it must refuse: each one a
clear page (4xx or 503), never a 500."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from sluice.app import SluiceApp
from tests.console.support import PASSWORD, set_password, sign_in
from tests.idp import ACCOUNTS, Idp
from tests.integration.conftest import make_settings, running
from tests.sso.conftest import GW, sso_config, through_idp

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def gateway(
    tmp_path: Path, config: str
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    """A gateway with org-A; the client is a browser at the gateway (no admin header)."""
    async with running(make_settings(tmp_path), config) as (app, admin):
        made = await admin.post("/api/v1/orgs", json={"name": "org-A"})
        assert made.status_code == 201, made.text
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=GW
        ) as browser:
            yield app, browser


async def start(browser: httpx.AsyncClient, idp: str = "main", next_path: str = "/ui/keys") -> str:
    resp = await browser.get(f"/ui/sso/{idp}/start", params={"next": next_path})
    assert resp.status_code == 303, resp.text
    return resp.headers["location"]


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def refused(resp: httpx.Response, status: int, words: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text[:800])
    assert "Sign-in failed" in resp.text or status == 403
    assert words in resp.text, resp.text[:1500]
    assert "sluice_session" not in resp.headers.get("set-cookie", "")


async def test_sign_in_creates_the_user_in_the_default_org_and_signs_in_again(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (app, browser):
        page = await browser.get("/ui/login")
        assert "Sign in with Main IdP" in page.text
        assert 'href="/ui/sso/main/start?next=' in page.text

        callback = await through_idp(idp_browser, await start(browser))
        done = await browser.get(callback)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/ui/keys"
        keys = await browser.get("/ui/keys")
        assert keys.status_code == 200
        assert "Alice Liddell" in keys.text or "alice@example.edu" in keys.text

        rt = app.runtime
        assert rt is not None
        user = await rt.storage.tenancy.user_by_email("alice@example.edu")
        assert user is not None and user.name == "Alice Liddell"
        [identity] = await rt.storage.identities.for_user(user.id)
        assert (identity.issuer, identity.subject) == (idp.issuer, "alice")
        assert identity.groups == tuple(ACCOUNTS["alice"]["groups"])
        first = identity.last_sign_in_at
        directory = await rt.storage.tenancy.directory()
        [org] = [o for o in directory.orgs if o.name == "org-A"]
        assert any(
            m.user_id == user.id and m.team_id == org.default_team_id for m in directory.memberships
        )

        # Again (a fresh browser at the IdP): the same user, a later sign-in time.
        async with httpx.AsyncClient(timeout=10) as again:
            callback = await through_idp(again, await start(browser))
        assert (await browser.get(callback)).status_code == 303
        [identity] = await rt.storage.identities.for_user(user.id)
        assert identity.last_sign_in_at >= first
        assert len([u for u in (await rt.storage.tenancy.directory()).users]) == 1


async def test_state_missing_unknown_and_reused_are_refused(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (_, browser):
        callback = await through_idp(idp_browser, await start(browser))
        refused(await browser.get(with_query(callback, state=None)), 400, "has no state")
        refused(await browser.get(with_query(callback, state="forged")), 400, "unknown, expired")
        assert (await browser.get(callback)).status_code == 303
        refused(await browser.get(callback), 400, "already used")


async def test_a_replayed_code_is_refused(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (_, browser):
        first = await through_idp(idp_browser, await start(browser))
        assert (await browser.get(first)).status_code == 303
        code = parse_qs(urlsplit(first).query)["code"][0]
        # A new sign-in of the same browser, answered with the first (spent) code.
        second = await through_idp(idp_browser, await start(browser))
        refused(await browser.get(with_query(second, code=code)), 400, "refused the sign-in code")


async def test_another_browser_cannot_finish_the_sign_in(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (app, browser):
        callback = await through_idp(idp_browser, await start(browser))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GW) as victim:
            refused(await victim.get(callback), 400, "another browser")


async def test_a_wrong_nonce_is_refused(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (_, browser):
        authorize = with_query(await start(browser), nonce="injected-nonce")
        callback = await through_idp(idp_browser, authorize)
        refused(await browser.get(callback), 401, "nonce claim is not accepted")


async def test_idp_mix_up_is_refused(
    tmp_path: Path, idp: Idp, idp2: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp, idp2)) as (_, browser):
        # A sign-in started with main, answered at other's callback.
        callback = await through_idp(idp_browser, await start(browser, "main"))
        crossed = callback.replace("/ui/sso/main/", "/ui/sso/other/")
        refused(await browser.get(crossed), 400, "another identity provider")
        # Answered at main's callback, but the response says it comes from other.
        callback = await through_idp(idp_browser, await start(browser, "main"))
        refused(
            await browser.get(with_query(callback, iss=idp2.issuer)),
            400,
            "comes from another identity provider",
        )
        # A code issued by other (for a sign-in started with main) never redeems at main.
        authorize = await start(browser, "main")
        at_other = authorize.replace(idp.issuer, idp2.issuer)
        callback = await through_idp(idp_browser, at_other)
        refused(await browser.get(with_query(callback, iss=None)), 400, "refused the sign-in code")


async def test_open_redirect_next_stays_inside_the_console(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (_, browser):
        for target in ("https://evil.example/", "//evil.example/ui/keys", "/ui\\@evil"):
            async with httpx.AsyncClient(timeout=10) as at_idp:
                callback = await through_idp(at_idp, await start(browser, next_path=target))
            done = await browser.get(callback)
            assert done.status_code == 303
            assert done.headers["location"] == "/ui/keys"
        callback = await through_idp(idp_browser, await start(browser, next_path="/ui/usage"))
        assert (await browser.get(callback)).headers["location"] == "/ui/usage"


async def test_idp_down_is_a_clear_page_and_passwords_still_work(tmp_path: Path, idp: Idp) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (app, browser):
        resp = await browser.get("/ui/sso/down/start")
        assert resp.status_code == 503
        assert "cannot be used right now" in resp.text
        assert (await browser.get("/ui/sso/nowhere/start")).status_code == 404
        rt = app.runtime
        assert rt is not None
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=GW,
            headers={"Authorization": "Bearer test-master-key"},
        )
        async with admin:
            made = await admin.post(
                "/api/v1/users", json={"email": "local@example.org", "name": "Local"}
            )
        await set_password(app, made.json()["id"])
        from tests.console.support import Browser

        assert (await sign_in(Browser(browser), "local@example.org")).status_code == 303


async def test_local_accounts_off_hides_and_refuses_passwords(tmp_path: Path, idp: Idp) -> None:
    async with gateway(tmp_path, sso_config(idp, local_accounts=False)) as (_, browser):
        page = await browser.get("/ui/login")
        assert 'name="password"' not in page.text
        assert "Sign in with Main IdP" in page.text
        resp = await browser.post(
            "/ui/login", data={"email": "x@example.org", "password": PASSWORD}
        )
        assert resp.status_code == 403
        assert "Password sign-in is switched off" in resp.text


async def test_same_email_other_subject_is_refused_unless_linking_is_allowed(
    tmp_path: Path, idp: Idp, idp2: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp, idp2, other_links=True)) as (app, browser):
        rt = app.runtime
        assert rt is not None
        # alice arrives through main first: her account is created and bound to main's sub.
        assert (
            await browser.get(await through_idp(idp_browser, await start(browser)))
        ).status_code == 303
        # main does not link by e-mail: an account made beforehand for carol is refused.
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=GW,
            headers={"Authorization": "Bearer test-master-key"},
        ) as admin:
            for who in ("carol", "bob"):
                made = await admin.post(
                    "/api/v1/users", json={"email": f"{who}@example.edu", "name": who}
                )
                assert made.status_code == 201, made.text
        async with httpx.AsyncClient(timeout=10) as at_idp:
            callback = await through_idp(at_idp, await start(browser), login="carol")
        refused(await browser.get(callback), 403, "is not linked to your")
        # other links a verified e-mail: carol's existing account gets other's identity ...
        async with httpx.AsyncClient(timeout=10) as at_idp:
            callback = await through_idp(at_idp, await start(browser, "other"), login="carol")
        assert (await browser.get(callback)).status_code == 303
        carol = await rt.storage.tenancy.user_by_email("carol@example.edu")
        assert carol is not None
        [linked] = await rt.storage.identities.for_user(carol.id)
        assert linked.issuer == idp2.issuer
        # other's ID tokens carry no e-mail: it came from its userinfo endpoint.
        assert linked.email == "carol@example.edu"
        # alice's account takes other's identity once; another subject of other with her
        # (verified) address does not get in.
        async with httpx.AsyncClient(timeout=10) as at_idp:
            callback = await through_idp(at_idp, await start(browser, "other"), login="alice")
        assert (await browser.get(callback)).status_code == 303
        async with httpx.AsyncClient(timeout=10) as at_idp:
            callback = await through_idp(at_idp, await start(browser, "other"), login="alice2")
        refused(await browser.get(callback), 403, "is not linked to your")
        # other has no default organisation: a newcomer is refused with a page saying so.
        async with httpx.AsyncClient(timeout=10) as at_idp:
            callback = await through_idp(at_idp, await start(browser, "other"), login="dave")
        refused(await browser.get(callback), 403, "no organisation here takes people")
        assert await rt.storage.tenancy.user_by_email("dave@example.edu") is None
        # ... and never an unverified one (bob).
        async with httpx.AsyncClient(timeout=10) as at_idp:
            callback = await through_idp(at_idp, await start(browser, "other"), login="bob")
        refused(await browser.get(callback), 403, "is not linked to your")


async def test_sign_out_ends_the_idp_session_too(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient
) -> None:
    async with gateway(tmp_path, sso_config(idp)) as (_, browser):
        assert (
            await browser.get(await through_idp(idp_browser, await start(browser)))
        ).status_code == 303
        # While signed in, another site's link to the sign-out page changes nothing.
        early = await browser.get("/ui/sso/main/signed-out")
        assert (early.status_code, early.headers["location"]) == (303, "/ui/keys")
        page = await browser.get("/ui/account")
        from tests.console.support import csrf_of

        out = await browser.post("/ui/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/sso/main/signed-out"
        # A page that navigates on (the sign-out form's CSP keeps its redirects here).
        ended = await browser.get(out.headers["location"])
        assert ended.status_code == 200
        found = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', ended.text)
        assert found is not None
        target = html.unescape(found.group(1))
        assert target.startswith(f"{idp.issuer}/session/end?")
        query = parse_qs(urlsplit(target).query)
        assert query["post_logout_redirect_uri"] == [f"{GW}/ui/login"]
        assert query["id_token_hint"][0].count(".") == 2
        assert (await browser.get("/ui/keys")).status_code == 303  # signed out here
        # The ID token was forgotten: a second visit goes nowhere near the IdP.
        again = await browser.get("/ui/sso/main/signed-out")
        assert (again.status_code, again.headers["location"]) == (303, "/ui/login")
        ended = await idp_browser.get(target)
        assert ended.status_code == 200  # the IdP asks to confirm its own sign-out
        assert "logout" in ended.text.lower()


async def test_a_sign_in_started_on_one_replica_finishes_on_another(
    tmp_path: Path, idp: Idp, idp_browser: httpx.AsyncClient, redis_url: str
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_url)
    config = sso_config(idp)
    async with running(settings, config) as (a, admin), running(settings, config) as (b, _):
        assert (await admin.post("/api/v1/orgs", json={"name": "org-A"})).status_code == 201
        at_a = httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url=GW)
        at_b = httpx.AsyncClient(transport=httpx.ASGITransport(app=b), base_url=GW)
        async with at_a, at_b:
            callback = await through_idp(idp_browser, await start(at_a))
            at_b.cookies = at_a.cookies  # one browser, two replicas behind a balancer
            done = await at_b.get(callback)
            assert done.status_code == 303, done.text
            assert (await at_b.get("/ui/keys")).status_code == 200
            # Taken once, on every replica.
            refused(await at_a.get(callback), 400, "already used")
