"""AWS credentials and SigV4 signing for Bedrock.

Credentials come from the config (``access_key_id``/``secret_access_key``/``session_token``,
usually ``env:`` references) or, when those are omitted, from botocore's standard chain
(environment, shared profile, SSO, web identity, container and instance roles). The chain is
resolved and refreshed in a worker thread, because its providers block. A Bedrock API key
(``api_key``) replaces signing with ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from sluice.config.providers import BedrockConfig
from sluice.config.secrets import SecretRef, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.http import credential_deadline
from sluice.settings import env_value

SERVICE = "bedrock"


def resolve_region(config: BedrockConfig) -> str:
    """The configured region, else the AWS environment's (``AWS_REGION``,
    ``AWS_DEFAULT_REGION``, the profile's ``region``)."""
    if config.region:
        return config.region
    import botocore.session

    region = env_value("AWS_REGION") or botocore.session.Session().get_config_variable("region")
    if not region:
        raise ValueError("bedrock needs a region: set 'region' or AWS_REGION")
    return str(region)


def sign(
    creds: ReadOnlyCredentials | Credentials,
    *,
    region: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
) -> dict[str, str]:
    """The headers of a SigV4-signed POST (``Authorization``, ``X-Amz-Date``, ...)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(creds, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


class AwsCredentials:
    """Where one provider's AWS credentials come from."""

    def __init__(self, provider: str, config: BedrockConfig, secrets: Secrets) -> None:
        """The config's key pair references come resolved in ``secrets`` (by the core, when
        the adapter was built); the AWS chain is asked only when there is no pair."""
        self._provider = provider
        self._key_id = config.access_key_id
        self._secret = config.secret_access_key
        self._token = config.session_token
        self._secrets = secrets
        self._chain: Any = None

    def _resolve(self, ref: SecretRef) -> str:
        value = self._secrets.value(ref)
        if not value:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                f"provider {self._provider!r} has no credential ({ref} is not set)",
            )
        return value

    async def get(self, call: UpstreamCall) -> ReadOnlyCredentials | Credentials:
        if self._key_id is not None and self._secret is not None:
            token = self._resolve(self._token) if self._token is not None else None
            return Credentials(self._resolve(self._key_id), self._resolve(self._secret), token)
        async with credential_deadline(call, what="the AWS credential chain"):
            return await asyncio.to_thread(self._from_chain)

    def _from_chain(self) -> ReadOnlyCredentials:
        import botocore.exceptions

        try:
            if self._chain is None:
                import botocore.session

                self._chain = botocore.session.Session().get_credentials()
            frozen: ReadOnlyCredentials | None = (
                None if self._chain is None else self._chain.get_frozen_credentials()
            )
        except botocore.exceptions.BotoCoreError as exc:  # a profile, SSO or role refresh failed
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                f"provider {self._provider!r}: the AWS credentials could not be loaded "
                f"({type(exc).__name__})",
            ) from None
        if frozen is None:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                f"provider {self._provider!r}: no AWS credentials found (set access_key_id "
                "and secret_access_key, or configure the AWS environment)",
            )
        return frozen
