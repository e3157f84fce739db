"""OAuth access tokens for Vertex AI.

With ``credentials`` set (a service-account JSON file path, or ``env:NAME`` holding a path or
the JSON itself) the token is fetched with the JWT bearer grant over the shared HTTP session,
under the call's deadlines; the assertion is signed with ``google-auth``'s RSA signer.
Without it, Google's Application Default Credentials are used (``google.auth.default``:
``GOOGLE_APPLICATION_CREDENTIALS``, gcloud, the metadata server), refreshed in a worker
thread because that library's transports block.

Tokens are cached per provider until five minutes before they expire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import aiohttp

from sluice.config.secrets import SecretRef, Secrets
from sluice.errors import (
    ErrorKind,
    GatewayError,
    provider_auth_error,
    upstream_http_error,
)
from sluice.providers.base import UpstreamCall
from sluice.providers.http import credential_deadline, error_message, map_transport_error
from sluice.providers.native.io import client_timeout
from sluice.providers.reading import read_small

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
REFRESH_MARGIN_S = 300.0
_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _unavailable(provider: str, why: str) -> GatewayError:
    return GatewayError(ErrorKind.GATEWAY_UNAVAILABLE, f"provider {provider!r}: {why}")


def load_service_account(value: str, provider: str) -> dict[str, Any]:
    """Parse a service-account JSON given inline or as a file path. Blocking (file read)."""
    text = value if value.lstrip().startswith("{") else None
    if text is None:
        try:
            text = Path(value).expanduser().read_text()
        except OSError as exc:
            raise _unavailable(
                provider, f"cannot read the credentials file ({exc.strerror})"
            ) from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        raise _unavailable(provider, "the credentials are not valid JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise _unavailable(provider, "the credentials are not a service-account key")
    for field in ("client_email", "private_key"):
        if not isinstance(info.get(field), str):
            raise _unavailable(provider, f"the service-account key has no {field}")
    return info


def signed_assertion(info: dict[str, Any], now: int) -> str:
    """The JWT a service account presents to the token endpoint."""
    from google.auth import crypt, jwt

    signer = crypt.RSASigner.from_service_account_info(info)
    claims = {
        "iss": info["client_email"],
        "scope": SCOPE,
        "aud": info.get("token_uri") or DEFAULT_TOKEN_URI,
        "iat": now,
        "exp": now + 3600,
    }
    token: bytes = jwt.encode(signer, claims)
    return token.decode()


class VertexAuth:
    """Bearer tokens (and the default project) for one Vertex provider."""

    def __init__(
        self,
        provider: str,
        credentials: SecretRef | None,
        secrets: Secrets,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``credentials``: the config's service-account reference, already resolved in
        ``secrets`` (by the core, when the adapter was built)."""
        self._provider = provider
        self._ref = credentials
        self._value = secrets.value(credentials)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._info: dict[str, Any] | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self.project: str | None = None
        """The credentials' project, known after the first token."""

    async def token(self, call: UpstreamCall) -> str:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                async with credential_deadline(call, what="the Google token endpoint"):
                    if self._ref is None:
                        token, lifetime = await self._default_credentials()
                    else:
                        token, lifetime = await self._service_account(call)
                self._token = token
                self._expires_at = self._clock() + max(0.0, lifetime - REFRESH_MARGIN_S)
            return self._token

    async def _service_account(self, call: UpstreamCall) -> tuple[str, float]:
        if self._info is None:
            assert self._ref is not None
            value = self._value
            if not value:
                raise _unavailable(self._provider, f"no credentials: {self._ref} is not set")
            self._info = await asyncio.to_thread(load_service_account, value, self._provider)
            project = self._info.get("project_id")
            self.project = project if isinstance(project, str) else None
        info = self._info
        try:
            assertion = signed_assertion(info, int(time.time()))
        except ValueError:  # a private key that does not parse
            raise _unavailable(self._provider, "the service-account key cannot sign") from None
        url = info.get("token_uri") or DEFAULT_TOKEN_URI
        form = {"grant_type": _GRANT, "assertion": assertion}
        try:
            async with call.session.post(url, data=form, timeout=client_timeout(call)) as resp:
                body = await read_small(resp)
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, deployment=call.deployment, started=False) from exc
        if status >= 500:
            raise upstream_http_error(status, "the Google token endpoint failed")
        if status >= 400:
            reason = error_message(body, status)
            raise provider_auth_error(
                f"provider {self._provider!r}: the token endpoint refused the service account "
                f"({reason})",
                upstream_status=status,
            )
        try:
            data = json.loads(body)
            return str(data["access_token"]), float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the Google token endpoint sent no access token"
            ) from None

    async def _default_credentials(self) -> tuple[str, float]:
        def refresh() -> tuple[str, float, str | None]:
            import google.auth
            import google.auth.exceptions
            import urllib3
            from google.auth.transport.urllib3 import Request

            try:
                creds, project = google.auth.default(scopes=[SCOPE])
                creds.refresh(Request(urllib3.PoolManager()))
            except google.auth.exceptions.GoogleAuthError as exc:
                raise _unavailable(
                    self._provider, f"no usable Google credentials ({type(exc).__name__})"
                ) from None
            expiry = getattr(creds, "expiry", None)  # naive UTC, per google-auth
            lifetime = 3600.0
            if expiry is not None:
                lifetime = expiry.replace(tzinfo=UTC).timestamp() - time.time()
            return str(creds.token), lifetime, project

        token, lifetime, project = await asyncio.to_thread(refresh)
        self.project = self.project or project
        return token, lifetime
