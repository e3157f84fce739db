"""The authorization-code flow with PKCE (S256), ``state`` and ``nonce``, for console sign-in.

``start`` stores a transaction and gives the URL to send the browser to; ``finish`` takes the
transaction back by ``state`` (once), checks it belongs to this IdP and this browser, trades
the code at the token endpoint (client secret as the IdP's discovery allows) and verifies the
ID token. Every refusal is a :class:`GatewayError` with a sentence a person can act on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from sluice.auth.oidc.metadata import MAX_DOCUMENT_BYTES, IdentityProvider, unavailable
from sluice.auth.oidc.tokens import Expect, verify
from sluice.auth.oidc.transactions import Transaction, TransactionStore
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError


def refused(message: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_BAD_REQUEST, message, code="sso_refused")


def browser_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Started:
    url: str
    """Where to send the browser (the IdP's authorization endpoint)."""
    browser_token: str
    """Goes into the sign-in cookie; binds the callback to this browser."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    idp: str
    claims: dict[str, Any]
    """The verified ID token's claims."""
    id_token: str
    """Kept for RP-initiated logout (``id_token_hint``)."""
    next: str


class OidcLogin:
    def __init__(
        self,
        providers: Mapping[str, IdentityProvider],
        store: TransactionStore,
        clock: Clock,
    ) -> None:
        self.providers = providers
        self._store = store
        self._clock = clock

    def provider(self, name: str) -> IdentityProvider:
        idp = self.providers.get(name)
        if idp is None:
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no identity provider {name!r}")
        return idp

    async def start(self, name: str, *, redirect_uri: str, next_path: str) -> Started:
        idp = self.provider(name)
        discovery = await idp.discovery()
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        browser = secrets.token_urlsafe(32)
        await self._store.put(
            state,
            Transaction(
                idp=name,
                nonce=nonce,
                verifier=verifier,
                next=next_path,
                browser=browser_hash(browser),
                redirect_uri=redirect_uri,
                created_at=self._clock.now(),
            ),
        )
        url = prepare_grant_uri(
            discovery.authorization_endpoint,
            idp.config.client_id,
            "code",
            redirect_uri,
            " ".join(idp.config.scopes),
            state,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            nonce=nonce,
        )
        return Started(str(url), browser)

    async def finish(
        self, name: str, params: Mapping[str, str], *, browser_token: str | None
    ) -> SignedIn:
        idp = self.provider(name)
        if "error" in params:
            raise refused(
                f"{idp.config.display_name} did not sign you in ({params['error'][:80]}). "
                "Start again from the sign-in page."
            )
        state = params.get("state")
        if not state:
            raise refused("The sign-in response has no state. Start again from the sign-in page.")
        tx = await self._store.take(state[:200])
        if tx is None:
            raise refused(
                "This sign-in is unknown, expired or was already used. "
                "Start again from the sign-in page."
            )
        if tx.idp != name:
            raise refused("This sign-in was started with another identity provider.")
        if not browser_token or not hmac.compare_digest(browser_hash(browser_token), tx.browser):
            raise refused("This sign-in was started in another browser. Start again here.")
        discovery = await idp.discovery()
        iss = params.get("iss")
        if iss is not None and iss != discovery.issuer:
            raise refused("The sign-in response comes from another identity provider.")
        code = params.get("code")
        if not code:
            raise refused("The sign-in response has no code. Start again from the sign-in page.")
        tokens = await self._redeem(idp, code, tx)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise refused(f"{idp.config.display_name} returned no ID token.")
        expect = Expect(
            issuer=discovery.issuer,
            audience=idp.config.client_id,
            algorithms=idp.config.algorithms,
            leeway_s=idp.config.leeway_s,
            nonce=tx.nonce,
        )
        claims = await verify(id_token, expect, idp.key, self._clock)
        access = tokens.get("access_token")
        wanted = idp.config.claims
        if (
            (wanted.email not in claims or wanted.groups not in claims)
            and discovery.userinfo_endpoint is not None
            and isinstance(access, str)
        ):
            claims = await _with_userinfo(idp, discovery.userinfo_endpoint, access, claims)
        return SignedIn(name, claims, id_token, tx.next)

    async def _redeem(self, idp: IdentityProvider, code: str, tx: Transaction) -> dict[str, Any]:
        """The token endpoint's answer for ``code``."""
        discovery = await idp.discovery()
        config = idp.config
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": tx.redirect_uri,
            "code_verifier": tx.verifier,
        }
        headers = {"accept": "application/json"}
        secret = config.client_secret.resolve() if config.client_secret is not None else None
        if secret is None:
            form["client_id"] = config.client_id
        elif "client_secret_basic" in discovery.token_auth_methods:
            basic = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}"
            headers["authorization"] = "Basic " + _b64(basic)
        else:
            form["client_id"] = config.client_id
            form["client_secret"] = secret
        timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        try:
            async with idp.session.post(
                discovery.token_endpoint, data=form, headers=headers, timeout=timeout
            ) as resp:
                status = resp.status
                raw = await resp.content.read(MAX_DOCUMENT_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unavailable(idp.name, f"token endpoint: {type(exc).__name__}") from exc
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if status >= 500 or not isinstance(body, dict):
            raise unavailable(idp.name, f"token endpoint answered {status}")
        if status != 200:
            error = str(body.get("error", status))[:80]
            raise refused(
                f"{config.display_name} refused the sign-in code ({error}); it may have been "
                "used already. Start again from the sign-in page."
            )
        return body


async def _with_userinfo(
    idp: IdentityProvider, url: str, access_token: str, claims: dict[str, Any]
) -> dict[str, Any]:
    """The ID token's claims completed from the userinfo endpoint (some IdPs put e-mail
    and groups only there); the ID token's own claims win, and the answer must be about
    the same subject."""
    info = await idp.get_json(url, bearer=access_token)
    if info.get("sub") != claims.get("sub"):
        raise refused(f"{idp.config.display_name} described another person than it signed in.")
    return {**info, **claims}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")
