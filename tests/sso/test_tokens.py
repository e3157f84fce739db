"""JWT verification against a real OpenID Provider's keys: every forged or misdirected token
is refused with a reason, a rotated key is fetched when a token names it (at most once per
30 s), and the IdP's own tokens pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from joserfc.jwk import RSAKey

from sluice.auth.oidc.metadata import REFRESH_EVERY_S, IdentityProvider
from sluice.auth.oidc.tokens import Expect, TokenRejected, verify
from sluice.clock import FakeClock
from sluice.config.auth import OidcProviderConfig
from sluice.errors import GatewayError
from tests.idp import AUDIENCE, Idp

pytestmark = pytest.mark.e2e


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"


def claims(idp: Idp, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": idp.issuer, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "w"}
    return {k: v for k, v in (base | changes).items() if v is not None}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def provider(idp: Idp, session: aiohttp.ClientSession, clock: FakeClock) -> IdentityProvider:
    config = OidcProviderConfig(display_name="Main", issuer=idp.issuer, client_id="x")
    return IdentityProvider("main", config, session=session, clock=clock)


EXPECT_ALGS = ("RS256", "ES256", "PS256")


async def check(token: str, idp: Idp, p: IdentityProvider, clock: FakeClock) -> dict[str, Any]:
    expect = Expect(issuer=idp.issuer, audience=AUDIENCE, algorithms=EXPECT_ALGS, leeway_s=30)
    return await verify(token, expect, p.key, clock)


async def refused(token: str, idp: Idp, p: IdentityProvider, clock: FakeClock, why: str) -> None:
    with pytest.raises(TokenRejected) as info:
        await check(token, idp, p, clock)
    assert why in info.value.message
    assert info.value.status == 401


async def test_the_idps_tokens_pass_and_forgeries_do_not(
    idp: Idp, idp2: Idp, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(time.time())
    p = provider(idp, session, clock)
    good = await check(idp.client_credentials_token(), idp, p, clock)
    assert good["client_id"] == "sluice-workload"
    assert (await check(idp.sign(claims(idp)), idp, p, clock))["sub"] == "w"

    await refused(idp.sign(claims(idp, aud="https://elsewhere")), idp, p, clock, "aud")
    await refused(idp.sign(claims(idp, iss=idp2.issuer)), idp, p, clock, "iss")
    await refused(idp2.sign(claims(idp)), idp, p, clock, "key the identity provider")
    old = int(time.time()) - 3600
    await refused(idp.sign(claims(idp, iat=old, exp=old + 60)), idp, p, clock, "exp")
    await refused(idp.sign(claims(idp, exp=None)), idp, p, clock, "exp")

    none = unsigned({"alg": "none", "typ": "JWT"}, claims(idp)) + "."
    await refused(none, idp, p, clock, "'none' is not accepted")

    # HS256 keyed with the RSA public key (the classic algorithm confusion).
    public = RSAKey.import_key(idp.public_jwk())
    pem = public.as_pem(private=False)
    head = unsigned({"alg": "HS256", "kid": idp.public_jwk()["kid"]}, claims(idp))
    mac = hmac.new(pem, head.encode(), hashlib.sha256).digest()
    await refused(f"{head}.{b64(mac)}", idp, p, clock, "'HS256' is not accepted")

    good_token = idp.sign(claims(idp))
    head, payload, signature = good_token.split(".")
    forged_payload = b64(orjson.dumps(claims(idp, sub="admin")))
    await refused(f"{head}.{forged_payload}.{signature}", idp, p, clock, "does not verify")
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    await refused(f"{head}.{payload}.{flipped}", idp, p, clock, "does not verify")
    await refused("not.a.jwt", idp, p, clock, "well-formed")


async def test_an_unknown_kid_fetches_the_keys_again_at_most_every_30_s(
    tmp_path_factory: pytest.TempPathFactory, session: aiohttp.ClientSession
) -> None:
    from tests.idp import running_idp

    with running_idp(tmp_path_factory.mktemp("idp-rotate"), redirect_uris=[]) as idp:
        clock = FakeClock(time.time())
        p = provider(idp, session, clock)
        await check(idp.sign(claims(idp)), idp, p, clock)  # keys fetched once
        idp.rotate()
        rotated = idp.sign(claims(idp))
        # Fetched moments ago: a token naming an unknown key waits for the next window.
        clock.advance(REFRESH_EVERY_S / 2)
        await refused(rotated, idp, p, clock, "key the identity provider does not publish")
        clock.advance(REFRESH_EVERY_S / 2)
        assert (await check(rotated, idp, p, clock))["sub"] == "w"


async def test_discovery_must_name_the_configured_issuer(
    idp: Idp, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(time.time())
    config = OidcProviderConfig(display_name="Main", issuer=idp.issuer + "/", client_id="x")
    p = IdentityProvider("main", config, session=session, clock=clock)
    with pytest.raises(GatewayError) as info:
        await p.discovery()
    assert info.value.status == 503
    assert "not the configured" in info.value.message
    assert (await provider(idp, session, clock).discovery()).issuer == idp.issuer
