"""IdP access tokens as data-plane credentials (``auth.oidc.<idp>.api_tokens``).

A Bearer token shaped like a JWT (never a gateway key: those start with ``sk-``) is verified
against the IdP whose issuer it names and which enables ``api_tokens``: signature by a key of
its JWKS, issuer, audience, expiry, algorithm allow-list. Its configured claim names the
workload, mapped to an existing gateway key whose principal the request then runs as (same
limits, budgets, model access and usage rows). A verified token is remembered by its hash
until it expires, so the hot path neither verifies a signature nor touches the database
again for it; the key's principal is read from the key cache each time, so revoking the key
stops its tokens at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from sluice.auth.oidc.metadata import IdentityProvider
from sluice.auth.oidc.tokens import Expect, TokenRejected, unverified_issuer, verify
from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.auth import ApiTokensConfig, AuthConfig
from sluice.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from sluice.auth.guard import BadKeyGuard

VERIFIED_CAP = 10_000
"""Verified tokens remembered at most (then forgotten at once and verified again)."""


class KeyPrincipals(Protocol):
    def active_principal(self, key_id: str) -> Principal | None:
        """The principal of a usable (not revoked, not expired) key, from the cache."""
        ...


class BearerTokens:
    def __init__(
        self,
        issuers: Mapping[str, tuple[IdentityProvider, ApiTokensConfig]],
        principals: KeyPrincipals,
        clock: Clock,
        *,
        guard: BadKeyGuard | None = None,
    ) -> None:
        """``issuers``: issuer URL → the IdP and its ``api_tokens`` block; ``guard``: the
        bad-key guard, which counts refused tokens like bad keys."""
        self._issuers = issuers
        self._guard = guard
        self._principals = principals
        self._clock = clock
        self._verified: dict[str, tuple[str, float]] = {}
        """SHA-256 of a token → (key id, expiry)."""

    @staticmethod
    def accepts(token: str) -> bool:
        """Shaped like a JWT (a JSON header starts ``eyJ``, three dot-separated parts)."""
        return token.startswith("eyJ") and token.count(".") == 2

    async def authenticate(self, token: str, scope: Mapping[str, Any] | None = None) -> Principal:
        """The principal the token runs as; raises a 401 ``GatewayError`` otherwise (503
        when the IdP's keys cannot be fetched). ``scope`` names the client for the guard."""
        guard = self._guard
        if guard is None or scope is None:
            return await self._authenticate(token)
        guard.check(scope)
        try:
            return await self._authenticate(token)
        except GatewayError as exc:
            if exc.kind is ErrorKind.CALLER_UNAUTHENTICATED:
                guard.failed(scope)
            raise

    async def _authenticate(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest()
        memo = self._verified.get(digest)
        if memo is not None and self._clock.now() < memo[1]:
            return self._principal(memo[0])
        key_id, expires = await self._verify(token)
        verified = self._verified
        if len(verified) >= VERIFIED_CAP:
            verified.clear()
        verified[digest] = (key_id, expires)
        return self._principal(key_id)

    def _principal(self, key_id: str) -> Principal:
        principal = self._principals.active_principal(key_id)
        if principal is None:
            raise TokenRejected("the gateway key this token maps to is revoked or expired")
        return principal

    async def _verify(self, token: str) -> tuple[str, float]:
        entry = self._issuers.get(unverified_issuer(token) or "")
        if entry is None:
            raise TokenRejected("the token's issuer is not accepted for API calls")
        idp, api = entry
        expect = Expect(
            issuer=idp.config.issuer,
            audience=api.audience,
            algorithms=api.algorithms,
            leeway_s=api.leeway_s,
        )
        claims = await verify(token, expect, idp.key, self._clock)
        value = claims.get(api.claim)
        key_id = api.principals.get(value) if isinstance(value, str) else None
        if key_id is None:
            raise TokenRejected(f"the token's {api.claim} claim names no workload known here")
        exp: Any = claims["exp"]
        return key_id, float(exp)


def bearer_tokens(
    auth: AuthConfig,
    principals: KeyPrincipals,
    *,
    session: aiohttp.ClientSession,
    clock: Clock,
    guard: BadKeyGuard | None = None,
) -> BearerTokens | None:
    """The verifier for every IdP that enables ``api_tokens``; ``None`` when none does (the
    data plane then never looks at a token's shape)."""
    issuers = {
        config.issuer: (
            IdentityProvider(name, config, session=session, clock=clock),
            config.api_tokens,
        )
        for name, config in auth.oidc.items()
        if config.api_tokens is not None
    }
    return BearerTokens(issuers, principals, clock, guard=guard) if issuers else None
