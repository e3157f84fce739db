"""Limit and budget settings: typed from the stored JSON to the check, and back unchanged."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sluice.auth.keys import KeyRecord
from sluice.budgets.spec import BUDGET_USD_MAX, BudgetSettings, BudgetSpec, stored_budget
from sluice.limits.settings import LimitSettings, stored_limits
from sluice.limits.spec import LIMIT_MAX, LimitSpec
from sluice.tenancy.audit import snapshot
from sluice.tenancy.model import Governance, Org
from sluice.tenancy.resolve import EMPTY, principal_for
from sluice.types import FieldError, Unreadable

STORED_LIMITS: dict[str, Any] = {
    "rpm": 60,
    "tpm_output": 1000,
    "max_parallel": 2,
    "models": {"gpt-4o": {"rpm": 5, "tpd_input": 10}},
}


def test_limits_round_trip_from_stored_json() -> None:
    settings = LimitSettings.from_json(STORED_LIMITS)
    assert settings.rpm == 60 and settings.tpm_input is None
    assert settings.models["gpt-4o"] == LimitSettings(rpm=5, tpd_input=10)
    assert settings.to_json() == STORED_LIMITS
    assert list(settings.to_json()) == list(STORED_LIMITS)
    assert LimitSettings.from_json({}).to_json() == {}
    assert not LimitSettings.from_json({"rpm": None})


def test_budget_round_trip_from_stored_json() -> None:
    for stored in ({"usd": 12.5, "period": "week"}, {"usd": 3, "period": "total"}):
        settings = BudgetSettings.from_json(stored)
        assert settings.to_json() == stored
        assert type(settings.to_json()["usd"]) is type(stored["usd"])
    assert BudgetSettings.from_json({"usd": 1}).period == "month"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"rpm": "lots"}, "limits.rpm"),
        ({"rpm": True}, "limits.rpm"),
        ({"rpm": 1.5}, "limits.rpm"),
        ({"rps": 1}, "limits.rps"),
        ({"models": {"m": {"tpm_input": [1]}}}, "limits.models.m.tpm_input"),
        ({"models": {"m": {"models": {}}}}, "limits.models.m.models"),
        ({"models": [1]}, "limits.models"),
        ([1], "limits"),
    ],
)
def test_unreadable_limits_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        LimitSettings.from_json(raw)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"usd": "10"}, "budget.usd"),
        ({"usd": False}, "budget.usd"),
        ({"period": "month"}, "budget.usd"),
        ({"usd": 1, "period": "year"}, "budget.period"),
        ({"usd": 1, "limit": 2}, "budget.limit"),
        ("1", "budget"),
    ],
)
def test_unreadable_budgets_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        BudgetSettings.from_json(raw)
    assert caught.value.field == field


def test_stored_values_an_older_version_wrote_load_and_keep_their_form() -> None:
    huge = 2**70
    legacy = stored_limits({"rpm": huge})
    assert legacy == LimitSettings(rpm=huge)
    assert legacy.spec() == LimitSpec(rpm=LIMIT_MAX)
    budget = stored_budget({"usd": math.inf, "period": "day"})
    assert isinstance(budget, BudgetSettings)
    assert budget.spec() == BudgetSpec(usd=BUDGET_USD_MAX, period="day")
    assert stored_budget({}) is None and stored_limits(None) is None
    odd = stored_limits({"rpm": "lots"})
    assert isinstance(odd, Unreadable) and odd.to_json() == {"rpm": "lots"}
    assert "limits.rpm" in odd.reason


def test_the_check_is_built_from_the_settings() -> None:
    settings = LimitSettings.from_json(STORED_LIMITS)
    assert settings.spec() == LimitSpec(rpm=60, tpm_output=1000, max_parallel=2)
    assert LimitSettings(models={"m": LimitSettings(rpm=1)}).spec() is None
    assert BudgetSettings(usd=0.1).spec().limit_micros == 100_000
    with pytest.raises(ValueError, match="rpm must be"):
        LimitSettings(rpm=-1).spec()


def _key(**governance: Any) -> KeyRecord:
    return KeyRecord("k1", "p", "k", "h", "sk-...", 0.0, **governance)


def test_a_principal_carries_typed_checks_and_an_unreadable_level_refuses_the_key() -> None:
    key = _key(limits=LimitSettings.from_json(STORED_LIMITS), budget=BudgetSettings(usd=2))
    principal = principal_for(key, EMPTY, everything=frozenset({"gpt-4o"}), canonical=str)
    assert principal is not None
    assert principal.limit_checks == (
        ("key:k1", LimitSpec(rpm=60, tpm_output=1000, max_parallel=2)),
    )
    assert principal.checks_for("gpt-4o")[-1] == (
        "key:k1:model:gpt-4o",
        LimitSpec(rpm=5, tpd_input=10),
    )
    [(scope, spec)] = principal.budget_checks
    assert (scope, spec.limit_micros, spec.period) == ("key:k1", 2_000_000, "month")
    odd = _key(budget=stored_budget({"usd": "lots"}))
    assert principal_for(odd, EMPTY, everything=frozenset(), canonical=str) is None


def test_audit_snapshots_show_the_stored_form() -> None:
    gov = Governance(limits=LimitSettings(rpm=5), budget=BudgetSettings(usd=1, period="day"))
    org = Org("o1", "acme", 0.0, None, gov)
    shown = snapshot(org)["governance"]
    assert shown == {
        "models": None,
        "models_exclude": [],
        "limits": {"rpm": 5},
        "budget": {"usd": 1, "period": "day"},
        "mcp_servers": None,
        "mcp_servers_exclude": [],
        "mcp_tools": None,
        "mcp_tools_exclude": [],
    }
    assert snapshot(_key(limits=LimitSettings(rpm=2**70)))["limits"] == {"rpm": str(2**70)}
