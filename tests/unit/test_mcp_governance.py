"""MCP access lists through every level (org → team → user → key): a lower level can only
narrow, like model access; the ``mcp_rpm`` limit becomes its own ``:mcp`` buckets."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.auth.keys import KeyRecord
from sluice.auth.principal import MCP_ALL, Principal
from sluice.config.mcp import SERVER_NAME
from sluice.errors import BadRequest
from sluice.limits.settings import LimitSettings
from sluice.limits.spec import LimitSpec
from sluice.tenancy import bounds
from sluice.tenancy.model import (
    Directory,
    Governance,
    Membership,
    Org,
    Team,
    TeamRole,
    User,
)
from sluice.tenancy.resolve import DirectoryIndex, effective_mcp, principal_for
from sluice.types import FieldError


def _principal(
    *,
    org: Governance | None = None,
    team: Governance | None = None,
    user: Governance | None = None,
    key: dict[str, Any] | None = None,
) -> Principal:
    directory = Directory(
        orgs=[Org("o1", "acme", 0.0, "t1", org or Governance())],
        teams=[Team("t1", "o1", "core", 0.0, team or Governance())],
        users=[User("u1", "a@x.io", "A", 0.0, governance=user or Governance())],
        memberships=[Membership("u1", "t1", TeamRole.MEMBER)],
        org_roles=[],
        service_accounts=[],
    )
    record = KeyRecord(
        "k1", "p", "k", "h", "sk-...", 0.0, user_id="u1", team_id="t1", **(key or {})
    )
    principal = principal_for(
        record, DirectoryIndex.build(directory), everything=frozenset(), canonical=str
    )
    assert principal is not None
    return principal


def test_nothing_set_anywhere_allows_every_server_and_tool() -> None:
    p = _principal()
    assert p.mcp == MCP_ALL
    assert p.mcp.may_use_tool("anything", "at_all")
    assert p.mcp_limit_checks == ()


def test_server_allow_lists_intersect_down_the_levels() -> None:
    p = _principal(
        org=Governance(mcp_servers=("github", "jira", "docs")),
        team=Governance(mcp_servers=("github", "docs", "slack")),
        key={"mcp_servers": ("docs", "github", "other")},
    )
    assert p.mcp.servers == frozenset({"github", "docs"})
    assert not p.mcp.may_use_server("slack")  # added by the team: cannot widen the org
    assert not p.mcp.may_use_server("other")  # added by the key: cannot widen either
    assert not p.mcp.may_use_server("jira")  # left out by the team


def test_a_server_excluded_at_any_level_is_gone_below_even_if_allowed_later() -> None:
    p = _principal(
        org=Governance(mcp_servers_exclude=("shell",)),
        user=Governance(mcp_servers_exclude=("jira",)),
        key={"mcp_servers": ("shell", "github")},
    )
    assert p.mcp.servers == frozenset({"github"})
    assert not p.mcp.may_use_server("shell")
    # Without any allow list an exclusion still holds for servers added after the cache fill.
    q = _principal(team=Governance(mcp_servers_exclude=("shell",)))
    assert q.mcp.servers is None
    assert not q.mcp.may_use_server("shell")
    assert q.mcp.may_use_server("added-later")


def test_tool_allow_patterns_narrow_per_level_and_exclusions_add_up() -> None:
    p = _principal(
        org=Governance(mcp_tools=("github/*", "docs/search")),
        team=Governance(mcp_tools=("github/list_*", "github/get_*", "docs/*")),
        user=Governance(mcp_tools_exclude=("github/get_secret*",)),
        key={"mcp_tools_exclude": ("*/list_repos",)},
    )
    assert p.mcp.tools_allow == (
        ("github/*", "docs/search"),
        ("github/list_*", "github/get_*", "docs/*"),
    )
    assert p.mcp.tools_deny == ("github/get_secret*", "*/list_repos")
    assert p.mcp.may_use_tool("github", "list_issues")
    assert p.mcp.may_use_tool("github", "get_issue")
    assert not p.mcp.may_use_tool("github", "create_issue")  # the team narrowed the org
    assert not p.mcp.may_use_tool("github", "get_secret_value")  # the user excluded it
    assert not p.mcp.may_use_tool("github", "list_repos")  # the key excluded it
    assert p.mcp.may_use_tool("docs", "search")
    assert not p.mcp.may_use_tool("docs", "fetch")  # the team's docs/* cannot widen the org


def test_a_key_allow_list_cannot_widen_its_team() -> None:
    p = _principal(
        team=Governance(mcp_tools=("github/list_*",)),
        key={"mcp_tools": ("github/*",)},
    )
    assert p.mcp.may_use_tool("github", "list_issues")
    assert not p.mcp.may_use_tool("github", "delete_repo")


def test_tool_patterns_never_reach_a_server_the_principal_may_not_use() -> None:
    p = _principal(org=Governance(mcp_servers=("docs",)), key={"mcp_tools": ("*/*",)})
    assert not p.mcp.may_use_tool("github", "list_issues")
    assert p.mcp.may_use_tool("docs", "search")


def test_effective_mcp_skips_missing_levels() -> None:
    assert effective_mcp([None, Governance(), None]) == MCP_ALL


def test_mcp_rpm_makes_mcp_buckets_apart_from_model_limits() -> None:
    p = _principal(
        org=Governance(limits=LimitSettings(mcp_rpm=100)),
        team=Governance(limits=LimitSettings(rpm=10, mcp_rpm=50)),
        key={"limits": LimitSettings(mcp_rpm=5)},
    )
    assert p.mcp_limit_checks == (
        ("key:k1:mcp", LimitSpec(rpm=5)),
        ("team:t1:mcp", LimitSpec(rpm=50)),
        ("org:o1:mcp", LimitSpec(rpm=100)),
    )
    assert p.limit_checks == (("team:t1", LimitSpec(rpm=10)),)


def test_mcp_rpm_is_stored_and_read_but_never_per_model() -> None:
    limits = LimitSettings.from_json({"rpm": 1, "mcp_rpm": 7})
    assert limits.mcp_rpm == 7 and limits.to_json() == {"rpm": 1, "mcp_rpm": 7}
    assert limits.spec() == LimitSpec(rpm=1)
    assert LimitSettings(mcp_rpm=3).spec() is None
    with pytest.raises(FieldError, match=r"limits\.models\.gpt-4o\.mcp_rpm"):
        LimitSettings.from_json({"models": {"gpt-4o": {"mcp_rpm": 1}}})
    with pytest.raises(BadRequest) as caught:
        bounds.check_limits(LimitSettings(models={"m": LimitSettings(mcp_rpm=1)}))
    assert caught.value.param == "limits.models.m.mcp_rpm"


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("mcp_servers", ("Bad Name",)),
        ("mcp_servers_exclude", ("x" * 65,)),
        ("mcp_tools", ("no-slash",)),
        ("mcp_tools", ("github/has space",)),
        ("mcp_tools_exclude", ("github/",)),
        ("mcp_tools_exclude", tuple(f"s/t{i}" for i in range(bounds.MCP_NAMES_MAX + 1))),
    ],
)
def test_bad_lists_are_refused_naming_the_field(field: str, values: tuple[str, ...]) -> None:
    with pytest.raises(BadRequest) as caught:
        bounds.check_governance(Governance(**{field: values}))
    assert caught.value.param == field


def test_good_lists_pass_and_unknown_servers_are_accepted() -> None:
    bounds.check_governance(
        Governance(
            mcp_servers=("not-configured-yet", "github"),
            mcp_servers_exclude=("shell",),
            mcp_tools=("github/*", "*/read_*", "docs/search.v2"),
            mcp_tools_exclude=("*/delete_*",),
        )
    )


def test_the_server_name_rule_is_the_configs() -> None:
    assert bounds.MCP_SERVER_NAME.pattern == SERVER_NAME.pattern
