"""A person SCIM provisioned signs in with OIDC for the first time: the Provisioner links
the sign-in to the provisioned account when its ``externalId`` is the ``sub``, or its
``userName`` the IdP's verified e-mail; anything else keeps the rules of ``auth.oidc``."""

from __future__ import annotations

import pytest

from sluice.config.auth import OidcProviderConfig
from sluice.errors import GatewayError
from tests.scim.conftest import Scim

ISSUER = "https://idp.example.org"
OKTA = OidcProviderConfig(display_name="Okta", issuer=ISSUER, client_id="gateway")


async def _sign_in(s: Scim, **claims: object) -> str:
    assert s.app.control is not None
    return await s.app.control.sso.provisioner.provision("okta", OKTA, {"iss": ISSUER, **claims})


async def test_linked_by_external_id_then_known_by_identity(scim: Scim) -> None:
    made = await scim.client.create_user("bjensen@example.com", externalId="00u1abc")
    # The IdP's e-mail differs (and is unverified): the sub decides.
    assert await _sign_in(scim, sub="00u1abc", email="barbara@other.org") == made["id"]
    assert await _sign_in(scim, sub="00u1abc") == made["id"]
    assert scim.app.runtime is not None
    identity = await scim.app.runtime.storage.identities.get(ISSUER, "00u1abc")
    assert identity is not None and identity.user_id == made["id"]


async def test_linked_by_verified_email_only(scim: Scim) -> None:
    made = await scim.client.create_user("carol@example.com")
    with pytest.raises(GatewayError) as refused:  # not verified: the auth.oidc rules apply
        await _sign_in(scim, sub="s-carol", email="Carol@example.com", email_verified=False)
    assert refused.value.status == 403
    linked = await _sign_in(scim, sub="s-carol", email="Carol@example.com", email_verified=True)
    assert linked == made["id"]


async def test_deactivated_and_local_accounts_are_not_linked(scim: Scim) -> None:
    gone = await scim.client.create_user("gone@example.com", externalId="00u-gone", active=False)
    with pytest.raises(GatewayError) as disabled:
        await _sign_in(scim, sub="00u-gone", email="gone@example.com", email_verified=True)
    assert "disabled" in disabled.value.message
    assert gone["active"] is False
    local = await scim.admin.post(
        "/api/v1/users", json={"email": "local@example.com", "name": "Local"}
    )
    assert local.status_code == 201, local.text
    with pytest.raises(GatewayError) as not_scim:  # a local account: link_verified_email rules
        await _sign_in(scim, sub="s-local", email="local@example.com", email_verified=True)
    assert "not linked" in not_scim.value.message
