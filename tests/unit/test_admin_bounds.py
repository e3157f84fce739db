"""The admin input bounds (``sluice.tenancy.bounds``) and the console's form parsing: any value
either passes or is a ``BadRequest`` naming its field, never another exception."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData

from sluice.budgets.spec import BUDGET_USD_MAX, BudgetSettings, BudgetSpec
from sluice.console import forms
from sluice.errors import BadRequest
from sluice.limits.settings import LIMIT_FIELDS, MCP_FIELDS, LimitSettings
from sluice.limits.spec import LIMIT_MAX, LimitSpec
from sluice.tenancy import bounds
from sluice.tenancy.model import Governance
from sluice.types import FieldError


def _check_limits(raw: Any) -> None:
    """Posted JSON through the value object (types), then the domain's bounds."""
    try:
        settings_ = LimitSettings.from_json(raw)
    except FieldError as exc:
        raise BadRequest(str(exc), param=exc.field) from None
    bounds.check_limits(settings_)


def _check_budget(raw: Any) -> None:
    try:
        settings_ = BudgetSettings.from_json(raw)
    except FieldError as exc:
        raise BadRequest(str(exc), param=exc.field) from None
    bounds.check_budget(settings_)


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(name=st.sampled_from(LIMIT_FIELDS), value=ANY_VALUE)
def test_a_limit_is_accepted_exactly_when_the_domain_can_enforce_it(name: str, value: Any) -> None:
    ok = value is None or (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LIMIT_MAX
    )
    per_model = name not in MCP_FIELDS  # MCP limits are never per model
    for limits, param, accepted in (
        ({name: value}, f"limits.{name}", ok),
        ({"models": {"gpt-4o": {name: value}}}, f"limits.models.gpt-4o.{name}", ok and per_model),
    ):
        if accepted:
            _check_limits(limits)
            continue
        with pytest.raises(BadRequest) as caught:
            _check_limits(limits)
        assert caught.value.param == param
    if ok and value is not None and per_model:
        assert getattr(LimitSpec(**{name: value}), name) == value
    elif ok and value is not None:
        spec = LimitSettings(**{name: value}).mcp_spec()
        assert spec is not None and spec.rpm == value


@settings(max_examples=300, derandomize=True, deadline=None)
@given(usd=ANY_VALUE)
def test_a_budget_is_accepted_exactly_when_it_converts_to_micro_dollars(usd: Any) -> None:
    ok = (
        isinstance(usd, int | float)
        and not isinstance(usd, bool)
        and math.isfinite(usd)
        and 0 <= usd <= BUDGET_USD_MAX
    )
    budget = {"usd": usd, "period": "month"}
    if not ok:
        with pytest.raises(BadRequest) as caught:
            _check_budget(budget)
        assert caught.value.param == "budget.usd"
        return
    _check_budget(budget)
    assert 0 <= BudgetSpec(usd=usd).limit_micros <= BUDGET_USD_MAX * 1_000_000 < 2**63


def test_only_changed_fields_are_checked() -> None:
    legacy = Governance(limits=LimitSettings(rpm=2**70), budget=BudgetSettings(usd=math.inf))
    bounds.check_governance(legacy, before=legacy)
    with pytest.raises(BadRequest) as caught:
        bounds.check_governance(legacy)
    assert caught.value.param == "limits.rpm"
    renamed = Governance(models=("m",), limits=legacy.limits, budget=legacy.budget)
    bounds.check_governance(renamed, before=legacy)


def test_expiry_bounds() -> None:
    now = 1_000_000.0
    bounds.check_expiry(None, now=now)
    bounds.check_expiry(now + 1, now=now)
    for bad in (now, now - 1, math.inf, math.nan, now + bounds.EXPIRY_MAX_S + 1):
        with pytest.raises(BadRequest) as caught:
            bounds.check_expiry(bad, now=now)
        assert caught.value.param == "expires_at"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(typed=st.text(max_size=25))
def test_console_counts_and_amounts_never_fail_otherwise(typed: str) -> None:
    form = FormData({"limits.rpm": typed, "budget.usd": typed})
    for parse, name, top in (
        (forms.count, "limits.rpm", LIMIT_MAX),
        (forms.money, "budget.usd", BUDGET_USD_MAX),
    ):
        outcome: Any
        try:
            outcome = parse(form, name)
        except BadRequest as exc:
            outcome = exc
        if isinstance(outcome, BadRequest):
            assert outcome.param == name
        else:
            assert outcome is None or 0 <= outcome <= top


def test_console_refuses_what_the_api_refuses() -> None:
    for typed in (str(LIMIT_MAX + 1), "١٢", "²", "-1", "1.5"):
        with pytest.raises(BadRequest):
            forms.count(FormData({"limits.rpm": typed}), "limits.rpm")
    assert forms.count(FormData({"limits.rpm": str(LIMIT_MAX)}), "limits.rpm") == LIMIT_MAX
    for typed in ("inf", "nan", "-0.5", str(BUDGET_USD_MAX * 10)):
        with pytest.raises(BadRequest):
            forms.money(FormData({"budget.usd": typed}), "budget.usd")
