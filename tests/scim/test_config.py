"""``auth.scim`` in the config file: typed, the token a reference, unknown keys located."""

from __future__ import annotations

import pytest

from sluice.config.loader import ConfigError, parse_config

GOOD = """\
auth:
  scim:
    token: env:SLUICE_SCIM_TOKEN
    org: research
"""


def test_scim_parses_and_keeps_the_token_a_reference() -> None:
    scim = parse_config(GOOD, source="sluice.yaml").auth.scim
    assert scim is not None
    assert scim.org == "research"
    assert scim.max_body_bytes == 2 * 1024 * 1024
    assert "SLUICE_SCIM_TOKEN" in repr(scim.token)
    assert parse_config("auth: {}\n", source="sluice.yaml").auth.scim is None


def test_unknown_keys_and_missing_fields_name_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD + "    tenant: x\n", source="sluice.yaml")
    assert [str(p) for p in info.value.problems] == [
        "sluice.yaml:5: auth.scim.tenant: unknown key 'tenant'"
    ]
    with pytest.raises(ConfigError) as missing:
        parse_config("auth:\n  scim:\n    org: research\n", source="sluice.yaml")
    assert "auth.scim.token" in str(missing.value.problems[0])
