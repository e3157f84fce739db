"""``auth:`` in the config file: local accounts and OpenID Connect identity providers.

Group mapping, admin groups and allowed domains live in ``sluice.config.provisioning``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.config.provisioning import ProvisioningConfig
from sluice.config.scim import ScimConfig
from sluice.config.secrets import SecretRef
from sluice.config.terms import TermsConfig

SigningAlg = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"
]
"""Asymmetric algorithms only: ``none`` and the HMAC family (whose key would be the
client secret, or a public key misused as one) are never accepted."""

IDP_NAME = r"[a-z0-9][a-z0-9_-]{0,23}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClaimNames(_Frozen):
    """Which ID-token claims carry the person's e-mail, groups and display name."""

    email: Annotated[str, Field(min_length=1)] = "email"
    groups: Annotated[str, Field(min_length=1)] = "groups"
    name: Annotated[str, Field(min_length=1)] = "name"


class ApiTokensConfig(_Frozen):
    """IdP-issued access tokens (JWTs, e.g. from the client-credentials grant) accepted on
    ``/v1/*`` as Bearer credentials, each run as an existing gateway key's principal."""

    audience: Annotated[str, Field(min_length=1)]
    """The ``aud`` the token must carry (the IdP's resource indicator for the gateway)."""
    algorithms: Annotated[tuple[SigningAlg, ...], Field(min_length=1)] = (
        "RS256",
        "ES256",
        "PS256",
    )
    claim: Annotated[str, Field(min_length=1)] = "client_id"
    """The claim naming the workload (``client_id``, ``azp`` or ``sub`` depending on the
    IdP)."""
    principals: Annotated[dict[str, str], Field(min_length=1)]
    """Claim value → gateway key id (``key_...``): the token runs with that key's limits,
    budgets, model access and usage rows. A value not listed is refused (401)."""
    leeway_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    """Clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""


class OidcProviderConfig(_Frozen):
    """One OpenID Connect identity provider (Keycloak, Entra ID, Okta, Google, ...)."""

    display_name: Annotated[str, Field(min_length=1, max_length=80)]
    """Shown on the sign-in button: "Sign in with <display_name>"."""
    issuer: Annotated[str, Field(min_length=1)]
    """The issuer URL; discovery reads ``<issuer>/.well-known/openid-configuration`` and
    the document's ``issuer`` must equal this exactly."""
    client_id: Annotated[str, Field(min_length=1)]
    client_secret: SecretRef | None = None
    """The console client's secret, as ``env:NAME`` (or a literal)."""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    claims: ClaimNames = Field(default_factory=ClaimNames)
    link_verified_email: bool = False
    """A first sign-in whose verified e-mail matches an existing account without an
    identity of this IdP is linked to it. Off: such a sign-in is refused."""
    default_org: str | None = None
    """Organisation (id or name) a first sign-in joins as a member; unset: people without
    an account are refused."""
    provisioning: ProvisioningConfig = Field(default_factory=ProvisioningConfig)
    """Group mapping to organisations, roles and teams, and allowed e-mail domains."""
    api_tokens: ApiTokensConfig | None = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    """Deadline of each call to the IdP (discovery, JWKS, token endpoint)."""
    leeway_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    """Clock skew tolerated on the ID token's ``exp`` and ``iat``."""
    algorithms: Annotated[tuple[SigningAlg, ...], Field(min_length=1)] = (
        "RS256",
        "ES256",
        "PS256",
    )
    """ID-token signature algorithms accepted."""

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("issuer must be an https:// URL (http:// only for local tests)")
        return value

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("scopes must include 'openid'")
        return value


class AuthConfig(_Frozen):
    local_accounts: bool = True
    """Email and password sign-in to the console. Off: the form is hidden and refused."""
    oidc: dict[str, OidcProviderConfig] = Field(default_factory=dict)
    """Identity providers by name (lower-case letters, digits, ``-``, ``_``; the name is in
    the callback URL ``/ui/sso/<name>/callback``)."""
    scim: ScimConfig | None = None
    """SCIM 2.0 provisioning at ``/scim/v2`` (``sluice.config.scim``); unset: off (404)."""
    terms: TermsConfig | None = None
    """Terms of service everyone accepts before using the console or their keys (unset: no
    terms; see docs/terms.md)."""

    @field_validator("oidc")
    @classmethod
    def _names(cls, value: dict[str, OidcProviderConfig]) -> dict[str, OidcProviderConfig]:
        for name in value:
            if not re.fullmatch(IDP_NAME, name):
                raise ValueError(
                    f"identity provider name {name!r}: use 1 to 24 lower-case letters, "
                    "digits, '-' or '_' (it is part of the callback URL)"
                )
        return value

    @model_validator(mode="after")
    def _someone_can_sign_in(self) -> AuthConfig:
        if not self.local_accounts and not self.oidc:
            raise ValueError(
                "local_accounts is false and no identity provider is configured under "
                "auth.oidc: nobody could sign in to the console"
            )
        return self
