"""``auth:`` in the config file: typed, unknown keys located by file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sluice.config.loader import ConfigError, load_default_config, parse_config

GOOD = """\
auth:
  local_accounts: false
  oidc:
    keycloak:
      display_name: University login
      issuer: https://login.example.edu/realms/main
      client_id: sluice
      client_secret: env:SLUICE_OIDC_SECRET
      claims: {groups: roles}
      default_org: research
      api_tokens:
        audience: https://gateway.example.edu
        claim: azp
        principals: {ci-runner: key_abc}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="sluice.yaml")
    return [str(p) for p in info.value.problems]


def test_a_full_auth_block_parses_and_keeps_the_secret_a_reference() -> None:
    auth = parse_config(GOOD, source="sluice.yaml").auth
    assert auth.local_accounts is False
    idp = auth.oidc["keycloak"]
    assert idp.scopes == ("openid", "email", "profile")
    assert idp.claims.groups == "roles" and idp.claims.email == "email"
    assert idp.link_verified_email is False
    assert "SLUICE_OIDC_SECRET" in repr(idp.client_secret)
    assert idp.api_tokens is not None
    assert idp.api_tokens.algorithms == ("RS256", "ES256", "PS256")
    assert idp.api_tokens.principals == {"ci-runner": "key_abc"}


def test_no_auth_block_means_local_accounts_and_no_idp() -> None:
    auth = load_default_config().auth
    assert auth.local_accounts is True and auth.oidc == {}


def test_unknown_keys_and_bad_values_name_file_and_line() -> None:
    text = GOOD.replace(
        "      default_org: research\n", "      default_org: research\n      tenant: x\n"
    )
    assert problems(text) == ["sluice.yaml:11: auth.oidc.keycloak.tenant: unknown key 'tenant'"]
    found = problems(GOOD.replace("claim: azp", "claim: azp\n        algorithms: [HS256]"))
    assert len(found) == 1 and found[0].startswith("sluice.yaml:14: auth.oidc.keycloak.api_tokens")
    assert problems(
        GOOD.replace("client_id: sluice\n", "client_id: sluice\n      scopes: [email]\n")
    ) == ["sluice.yaml:8: auth.oidc.keycloak.scopes: scopes must include 'openid'"]
    assert "issuer" in problems(GOOD.replace("https://login", "ftp://login"))[0]
    assert problems("auth: {local_accounts: false}\n") == [
        "sluice.yaml:1: auth: local_accounts is false and no identity provider is configured "
        "under auth.oidc: nobody could sign in to the console"
    ]
    [named] = problems(GOOD.replace("    keycloak:", "    Key Cloak!:"))
    assert named.startswith("sluice.yaml:3: auth.oidc: identity provider name 'Key Cloak!'")


DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("page", ["sso.md", "configuration.md"])
def test_the_documented_auth_examples_parse(page: str) -> None:
    blocks = re.findall(r"```yaml\n(auth:\n.*?)```", (DOCS / page).read_text(), re.S)
    complete = [b for b in blocks if "# ... as above" not in b]
    assert complete
    for block in complete:
        assert parse_config(block, source=page).auth.oidc
