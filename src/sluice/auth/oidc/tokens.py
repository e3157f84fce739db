"""Verifying a JWT from an identity provider: the algorithm from an allow-list of asymmetric
algorithms (checked before any key is touched, so ``alg: none`` and an HMAC token keyed with
a public key never reach a verifier), the key by ``kid`` from the IdP's JWKS, the signature
by joserfc (authlib's JOSE implementation), then the claims.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError

MAX_TOKEN_CHARS = 16_384


class TokenRejected(GatewayError):
    """The token is not one we accept; ``message`` says why (no secret in it)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.CALLER_UNAUTHENTICATED, message, code="invalid_token")


@dataclass(frozen=True, slots=True)
class Expect:
    """What a token must say about itself."""

    issuer: str
    audience: str
    algorithms: Collection[str]
    leeway_s: float
    nonce: str | None = None
    """For ID tokens: the nonce sent in the authorization request."""


KeyLookup = Callable[[str | None], Awaitable[RSAKey | ECKey | OKPKey | None]]


def _b64json(part: str) -> dict[str, Any]:
    padded = part + "=" * (-len(part) % 4)
    try:
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise TokenRejected("the token is not a well-formed JWT") from exc
    if not isinstance(value, dict):
        raise TokenRejected("the token is not a well-formed JWT")
    return value


def unverified_header(token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TokenRejected("the token is not a well-formed JWT")
    return _b64json(token.split(".", 1)[0])


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read before verification (to pick the IdP that must then
    verify it); never trusted on its own."""
    unverified_header(token)
    iss = _b64json(token.split(".")[1]).get("iss")
    return iss if isinstance(iss, str) else None


async def verify(token: str, expect: Expect, key_for: KeyLookup, clock: Clock) -> dict[str, Any]:
    """The token's claims once signature, issuer, audience, times (and nonce) hold; raises
    :class:`TokenRejected` otherwise. ``key_for`` may fetch the IdP's keys again."""
    header = unverified_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in expect.algorithms:
        raise TokenRejected(f"the token's signature algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    key = await key_for(kid if isinstance(kid, str) else None)
    if key is None:
        raise TokenRejected("the token is signed with a key the identity provider does not publish")
    try:
        decoded = jwt.decode(token, key, algorithms=[alg])
    except JoseError as exc:
        raise TokenRejected("the token's signature does not verify") from exc
    claims = dict(decoded.claims)
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": expect.issuer},
        "aud": {"essential": True, "value": expect.audience},
        "exp": {"essential": True},
    }
    if expect.nonce is not None:
        options["iat"] = {"essential": True}
        options["nonce"] = {"essential": True, "value": expect.nonce}
    registry = jwt.JWTClaimsRegistry(
        now=lambda: int(clock.now()), leeway=int(expect.leeway_s), **options
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        claim = getattr(exc, "claim", None) or "a claim"
        raise TokenRejected(
            f"the token's {claim} claim is not accepted: {exc.description}"
        ) from exc
    iat = claims.get("iat")
    if isinstance(iat, int | float) and iat > clock.now() + expect.leeway_s:
        raise TokenRejected("the token's iat claim is in the future")
    if expect.nonce is not None:
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != expect.audience:
            raise TokenRejected("the token's azp claim does not name this client")
    return claims
