"""The group mapping as one pure function: what a set of claims maps to."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sluice.auth.oidc.mapping import Known, plan
from sluice.config.auth import OidcProviderConfig


def idp(**provisioning: Any) -> OidcProviderConfig:
    default_org = provisioning.pop("default_org", None)
    return OidcProviderConfig.model_validate(
        {
            "display_name": "Campus",
            "issuer": "https://idp.example",
            "client_id": "sluice",
            "default_org": default_org,
            "provisioning": provisioning,
        }
    )


def test_explicit_table_wins_over_rules_and_default() -> None:
    config = idp(
        orgs={"physics-staff": "Physics"},
        org_rules=[{"match": "^lab-(?P<org>[a-z]+)$", "create": True}],
        default_org="Guests",
    )
    result = plan("campus", config, groups=("lab-chem", "physics-staff"), email="a@x.org")
    assert (result.org, result.org_source, result.create_org) == (
        "Physics",
        "group physics-staff",
        False,
    )


def test_regex_rule_creates_or_requires_the_org() -> None:
    create = idp(org_rules=[{"match": "^lab-(?P<org>[a-z0-9-]+)$", "create": True}])
    made = plan("campus", create, groups=("lab-bio",), email="a@x.org")
    assert (made.org, made.create_org, made.refused) == ("bio", True, None)
    existing = plan("campus", create, groups=("lab-bio",), email=None, known=Known({"bio"}))
    assert (existing.org, existing.create_org) == ("bio", False)

    must_exist = idp(
        org_rules=[{"match": "^lab-(?P<org>[a-z]+)$", "org": "Lab {org}"}], default_org="Guests"
    )
    fallback = plan("campus", must_exist, groups=("lab-bio",), email=None)
    assert (fallback.org, fallback.org_source) == ("Guests", "default_org")
    assert fallback.notes == ("group lab-bio names organisation 'Lab bio', which does not exist",)
    found = plan("campus", must_exist, groups=("lab-bio",), email=None, known=Known({"Lab bio"}))
    assert found.org == "Lab bio"


def test_default_org_and_no_org_refused() -> None:
    assert plan("campus", idp(default_org="Guests"), groups=(), email="a@x").org == "Guests"
    refused = plan("campus", idp(orgs={"staff": "Staff"}), groups=("students",), email="a@x")
    assert refused.org is None
    assert refused.refused is not None and "none of your groups" in refused.refused
    kept = plan("campus", idp(orgs={"staff": "Staff"}), groups=(), email="a@x", has_org=True)
    assert (kept.refused, kept.org) == (None, None)


def test_admin_and_org_admin_groups() -> None:
    config = idp(default_org="Lab", admin_groups=["ops"], org_admin_groups=["lab-leads"])
    assert plan("campus", config, groups=("ops",), email=None).admin
    leader = plan("campus", config, groups=("lab-leads",), email=None)
    assert (leader.admin, leader.org_admin) == (False, True)
    member = plan("campus", config, groups=("other",), email=None)
    assert (member.admin, member.org_admin) == (False, False)


def test_team_rules_and_manual_teams() -> None:
    rules = {"match": "^team-(?P<team>[a-z]+)$"}
    config = idp(default_org="Lab", teams=[rules, {"match": "^(?P<x>gpu)-users$", "team": "{x}"}])
    groups = ("team-nlp", "gpu-users", "team-vision", "other")
    assert plan("campus", config, groups=groups, email=None).teams == ("nlp", "gpu", "vision")
    manual = Known(frozenset({"Lab"}), frozenset({("Lab", "vision")}))
    left = plan("campus", config, groups=groups, email=None, known=manual)
    assert (left.teams, left.skipped_teams) == (("nlp", "gpu"), ("vision",))
    synced = idp(default_org="Lab", teams=[rules], sync_manual_teams=True)
    assert plan("campus", synced, groups=groups, email=None, known=manual).teams == (
        "nlp",
        "vision",
    )


def test_allowed_domains() -> None:
    config = idp(default_org="Lab", allowed_domains=["Uni.EDU"])
    assert plan("campus", config, groups=(), email="p@uni.edu").refused is None
    for email in ("p@evil.edu", "p@sub.uni.edu", None):
        refused = plan("campus", config, groups=(), email=email).refused
        assert refused is not None and "uni.edu only" in refused


def test_plan_as_json() -> None:
    shown = plan("campus", idp(default_org="Lab"), groups=(), email=None).to_json()
    assert shown["allowed"] is True and shown["org"] == "Lab" and shown["teams"] == []


@pytest.mark.parametrize(
    "rule",
    [
        {"org_rules": [{"match": "("}]},
        {"org_rules": [{"match": "^lab-(?P<name>.+)$"}]},
        {"teams": [{"match": "^t-(.+)$", "team": "{team}"}]},
        {"orgs": {"a": "b"}, "unknown": 1},
    ],
)
def test_bad_rules_are_config_errors(rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        idp(**rule)
