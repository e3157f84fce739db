"""One identity provider as seen from the gateway: its discovery document and its signing
keys, fetched over the process's HTTP session with a deadline and cached.

The JWKS is fetched again when a token names a key id it does not hold (the IdP rotated its
keys), at most once per ``REFRESH_EVERY_S``, so a stream of tokens with made-up key ids
cannot turn the gateway into a load generator against the IdP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from sluice.clock import Clock
from sluice.config.auth import OidcProviderConfig
from sluice.errors import ErrorKind, GatewayError

DISCOVERY_TTL_S = 3600.0
"""A discovery document is fetched again after this long."""
REFRESH_EVERY_S = 30.0
"""Least time between two JWKS fetches caused by unknown key ids."""
MAX_DOCUMENT_BYTES = 1 << 20

PublicKey = RSAKey | ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class Discovery:
    """The fields of ``/.well-known/openid-configuration`` the gateway uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    userinfo_endpoint: str | None = None

    @classmethod
    def parse(cls, doc: dict[str, Any], *, expected_issuer: str) -> Discovery:
        if doc.get("issuer") != expected_issuer:
            raise ValueError(
                f"the discovery document names issuer {doc.get('issuer')!r}, "
                f"not the configured {expected_issuer!r}"
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(name), str):
                raise ValueError(f"the discovery document has no {name}")
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        end = doc.get("end_session_endpoint")
        userinfo = doc.get("userinfo_endpoint")
        return cls(
            issuer=expected_issuer,
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
            end_session_endpoint=end if isinstance(end, str) else None,
            token_auth_methods=tuple(m for m in methods if isinstance(m, str)),
            userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
        )


def unavailable(name: str, why: str) -> GatewayError:
    return GatewayError(
        ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE,
        f"the identity provider {name!r} cannot be used right now ({why}); try again later",
        detail=why,
    )


class IdentityProvider:
    """Discovery and keys of one configured IdP (``name`` as in ``auth.oidc``)."""

    def __init__(
        self,
        name: str,
        config: OidcProviderConfig,
        *,
        session: aiohttp.ClientSession,
        clock: Clock,
    ) -> None:
        self.name = name
        self.config = config
        self.session = session
        self._clock = clock
        self._discovery: Discovery | None = None
        self._discovered_at = 0.0
        self._keys: dict[str, PublicKey] = {}
        self._keys_at: float | None = None
        self._lock = asyncio.Lock()

    async def get_json(self, url: str, *, bearer: str | None = None) -> dict[str, Any]:
        """GET ``url`` as JSON within the IdP's deadline (with an access token when
        ``bearer``); 503 ``GatewayError`` otherwise."""
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        headers = {"authorization": f"Bearer {bearer}"} if bearer else None
        try:
            async with self.session.get(url, timeout=timeout, headers=headers) as resp:
                if resp.status != 200:
                    raise unavailable(self.name, f"GET {url} answered {resp.status}")
                raw = await resp.content.read(MAX_DOCUMENT_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unavailable(self.name, f"GET {url} failed: {type(exc).__name__}") from exc
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise unavailable(self.name, f"GET {url} did not answer JSON") from exc
        if not isinstance(doc, dict):
            raise unavailable(self.name, f"GET {url} did not answer a JSON object")
        return doc

    async def discovery(self) -> Discovery:
        """The issuer's metadata (cached for ``DISCOVERY_TTL_S``); its ``issuer`` must
        equal the configured one."""
        now = self._clock.now()
        cached = self._discovery
        if cached is not None and now - self._discovered_at < DISCOVERY_TTL_S:
            return cached
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = await self.get_json(url)
        try:
            found = Discovery.parse(doc, expected_issuer=self.config.issuer)
        except ValueError as exc:
            raise unavailable(self.name, str(exc)) from exc
        self._discovery, self._discovered_at = found, now
        return found

    async def key(self, kid: str | None) -> PublicKey | None:
        """The signing key named ``kid`` (or the only key when the token names none);
        fetches the JWKS when it is not known yet or no longer holds ``kid``."""
        found = self._pick(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._pick(kid)
            if found is not None:
                return found
            last = self._keys_at
            if last is not None and self._clock.now() - last < REFRESH_EVERY_S:
                return None
            await self._fetch_keys()
        return self._pick(kid)

    def _pick(self, kid: str | None) -> PublicKey | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _fetch_keys(self) -> None:
        discovery = await self.discovery()
        self._keys_at = self._clock.now()
        doc = await self.get_json(discovery.jwks_uri)
        keys: dict[str, PublicKey] = {}
        for entry in doc.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in {"RSA", "EC", "OKP"}:
                continue  # symmetric keys are never accepted from a JWKS
            try:
                key = KeySet.import_key_set({"keys": [entry]}).keys[0]
            except (JoseError, ValueError, TypeError):
                continue
            if isinstance(key, RSAKey | ECKey | OKPKey):
                keys[str(entry.get("kid") or key.thumbprint())] = key
        self._keys = keys
