"""Cedar routing policies: the shipped examples, loading and reloading, explanations, cache."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import cast

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.clock import FakeClock
from sluice.config.providers import ProviderConfig, Timeouts
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import Provider
from sluice.routing.health import DeploymentStats
from sluice.routing.policy import (
    DeploymentFacts,
    PolicyEngine,
    PolicyLoadError,
    RequestFacts,
    basis_points,
    is_self_hosted,
    micros_per_mtok,
    parse_sla_header,
    static_facts,
    with_health,
)
from sluice.routing.policy.schema import (
    DEPLOYMENT_ATTRS,
    SCHEMA,
    AttrReader,
    principal_entity,
)
from sluice.routing.policy.source import load, split_statements
from sluice.routing.policy.usage import analyse, canonical
from sluice.routing.table import Deployment, ModelEntry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
DEFAULT = EXAMPLES / "default.cedar"
ERROR_RATE = EXAMPLES / "forbid-error-rate-above-5pct.cedar"
SLA = EXAMPLES / "forbid-slower-than-sla.cedar"
SELF_HOSTED = EXAMPLES / "prefer-self-hosted-when-budget-low.cedar"


def dep(key: str, **facts: object) -> DeploymentFacts:
    base: dict[str, object] = {
        "provider": key.split("/", maxsplit=1)[0],
        "provider_type": "openai_compatible",
        "model": "m",
        "public_model": "chat",
        "samples": 100,
        "error_rate_bp": 0,
        "latency_ms": 200,
    }
    base.update(facts)
    return DeploymentFacts(key=key, **base)  # type: ignore[arg-type]


def req(**facts: object) -> RequestFacts:
    base: dict[str, object] = {"key_id": "k1", "model": "chat"}
    base.update(facts)
    return RequestFacts(**base)  # type: ignore[arg-type]


def engine(*paths: Path, clock: FakeClock | None = None, **options: float) -> PolicyEngine:
    policy = PolicyEngine(paths, clock=clock or FakeClock(), **options)  # type: ignore[arg-type]
    policy.load()
    return policy


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


# The shipped examples


def test_default_permits_everything_in_order() -> None:
    decision = engine(DEFAULT).evaluate([dep("a/1"), dep("b/1"), dep("c/1")], req())
    assert decision.order == ["a/1", "b/1", "c/1"]
    assert decision.forbidden == {}
    assert decision.preferred == {}


def test_error_rate_above_5pct_is_forbidden() -> None:
    policy = engine(DEFAULT, ERROR_RATE)
    candidates = [
        dep("a/1", error_rate_bp=501),
        dep("b/1", error_rate_bp=500),
        dep("c/1", error_rate_bp=900, samples=5),  # too few samples to judge
        dep("d/1", error_rate_bp=-1, samples=0),
    ]
    decision = policy.evaluate(candidates, req())
    assert decision.order == ["b/1", "c/1", "d/1"]
    assert decision.forbidden == {"a/1": ["forbid-error-rate-above-5pct"]}


def test_slower_than_sla_is_forbidden_only_with_the_header() -> None:
    policy = engine(DEFAULT, SLA)
    candidates = [dep("a/1", latency_ms=900), dep("b/1", latency_ms=300), dep("c/1", latency_ms=-1)]
    with_sla = policy.evaluate(candidates, req(sla_ms=500))
    assert with_sla.order == ["b/1", "c/1"]
    assert with_sla.forbidden == {"a/1": ["forbid-slower-than-sla"]}
    assert policy.evaluate(candidates, req()).order == ["a/1", "b/1", "c/1"]


def test_self_hosted_preferred_when_budget_low() -> None:
    policy = engine(DEFAULT, SELF_HOSTED)
    candidates = [dep("cloud/1"), dep("local/1", self_hosted=True), dep("cloud/2")]
    low = req(budget_remaining_micros=150_000, budget_limit_micros=1_000_000)
    decision = policy.evaluate(candidates, low)
    assert decision.order == ["local/1", "cloud/1", "cloud/2"]
    assert decision.preferred == {"local/1": ["prefer-self-hosted-when-budget-low"]}
    plenty = req(budget_remaining_micros=200_000, budget_limit_micros=1_000_000)
    assert policy.evaluate(candidates, plenty).order == ["cloud/1", "local/1", "cloud/2"]
    assert policy.evaluate(candidates, req()).order == ["cloud/1", "local/1", "cloud/2"]


def test_all_examples_together() -> None:
    policy = engine(EXAMPLES)
    candidates = [
        dep("cloud/1", latency_ms=400),
        dep("local/slow", self_hosted=True, latency_ms=2000),
        dep("local/fast", self_hosted=True, latency_ms=300, error_rate_bp=50),
        dep("local/broken", self_hosted=True, latency_ms=100, error_rate_bp=2500),
    ]
    low = req(budget_remaining_micros=1, budget_limit_micros=100, sla_ms=1000)
    decision = policy.evaluate(candidates, low)
    assert decision.order == ["local/fast", "cloud/1"]
    assert decision.forbidden == {
        "local/slow": ["forbid-slower-than-sla"],
        "local/broken": ["forbid-error-rate-above-5pct"],
    }


def test_forbidding_everything_leaves_an_empty_order(write: Callable[[str, str], Path]) -> None:
    deny = write(
        "deny.cedar",
        '@id("closed") forbid(principal, action == Sluice::Action::"route", resource);',
    )
    decision = engine(DEFAULT, deny).evaluate([dep("a/1"), dep("b/1")], req())
    assert decision.order == []
    assert decision.forbidden == {"a/1": ["closed"], "b/1": ["closed"]}


def test_shipped_policies_and_facts_match_the_schema() -> None:
    schema = cedarpy.Schema.from_str(SCHEMA)
    for path in EXAMPLES.glob("*.cedar"):
        assert cedarpy.validate_policies(path.read_text(), schema).validation_passed, path
    principal = principal_entity(req(user_id="u", team_id="t", org_id="o", teams=frozenset("x")))
    resource = {"uid": {"type": "Sluice::Deployment", "id": "a/1"}, "parents": []}
    resource["attrs"] = AttrReader(DEPLOYMENT_ATTRS).as_dict(dep("a/1"))
    cedarpy.Entities.from_json_str(json.dumps([principal, resource]), schema)


# Explanations


def test_explain_names_the_policies_and_their_files() -> None:
    policy = engine(EXAMPLES)
    candidates = [dep("cloud/1", latency_ms=900), dep("local/1", self_hosted=True)]
    report = policy.explain(
        candidates, req(sla_ms=500, budget_remaining_micros=0, budget_limit_micros=9)
    )
    assert report["order"] == ["local/1"]
    assert report["forbidden"] == {"cloud/1": ["forbid-slower-than-sla"]}
    assert report["preferred"] == {"local/1": ["prefer-self-hosted-when-budget-low"]}
    details = {d["key"]: d for d in report["deployments"]}  # type: ignore[attr-defined]
    assert details["cloud/1"]["why"] == "forbidden by forbid-slower-than-sla"
    assert details["local/1"]["permitted_by"] == ["default-route"]
    named = {p["id"]: p for p in report["policies"]}  # type: ignore[attr-defined]
    assert set(named) == {
        "default-route",
        "forbid-slower-than-sla",
        "prefer-self-hosted-when-budget-low",
    }
    assert named["forbid-slower-than-sla"]["file"] == str(SLA)
    assert named["forbid-slower-than-sla"]["line"] == 4
    assert "resource.latency_ms > context.sla_ms" in named["forbid-slower-than-sla"]["source"]
    assert report["context"]["sla_ms"] == 500  # type: ignore[index]
    assert report["facts"]["cloud/1"]["latency_ms"] == 900  # type: ignore[index]


def test_explain_says_when_nothing_permits(write: Callable[[str, str], Path]) -> None:
    only_team = write(
        "team.cedar",
        'permit(principal in Sluice::Team::"ml", action == Sluice::Action::"route", resource);',
    )
    policy = engine(only_team)
    report = policy.explain([dep("a/1")], req(team_id="web"))
    assert report["forbidden"] == {"a/1": []}
    assert "no policy permits" in report["deployments"][0]["why"]  # type: ignore[index]
    assert policy.evaluate([dep("a/1")], req(team_id="ml")).order == ["a/1"]
    assert policy.evaluate([dep("a/1")], req(teams=frozenset({"ml"}))).order == ["a/1"]


def test_policies_without_id_are_named_by_file_and_position(
    write: Callable[[str, str], Path],
) -> None:
    path = write(
        "mine.cedar",
        "// two policies\npermit(principal, action, resource);\n\n"
        'forbid(principal, action, resource) when { resource.provider == "x" };\n',
    )
    policy = engine(path)
    assert [(p.id, p.line) for p in policy.policies()] == [("mine.cedar#1", 2), ("mine.cedar#2", 4)]
    assert policy.evaluate([dep("x/1")], req()).forbidden == {"x/1": ["mine.cedar#2"]}


def test_evaluation_errors_are_reported_and_the_policy_skipped(
    write: Callable[[str, str], Path],
) -> None:
    boom = write(
        "boom.cedar",
        '@id("overflow") forbid(principal, action, resource) '
        "when { resource.latency_ms * 9223372036854775807 > 0 };",
    )
    decision = engine(DEFAULT, boom).evaluate([dep("a/1", latency_ms=5)], req())
    assert decision.order == ["a/1"]
    assert len(decision.errors) == 1
    assert "overflow" in decision.errors[0]


# Loading and reloading


def test_syntax_error_names_file_and_line(write: Callable[[str, str], Path]) -> None:
    bad = write(
        "bad.cedar",
        'permit(principal, action, resource);\n\n// a comment; with a semicolon\n@id("x;y")\n'
        "forbid(principal, action, resource) when { resource.latency_ms >> 3 };\n",
    )
    with pytest.raises(PolicyLoadError) as caught:
        engine(bad)
    (problem,) = caught.value.problems
    assert problem.file == str(bad)
    assert problem.line == 4
    assert "syntax error" in problem.message
    assert str(problem).startswith(f"{bad}:4: ")


def test_unknown_attribute_is_a_load_error(write: Callable[[str, str], Path]) -> None:
    typo = write(
        "typo.cedar",
        '@id("typo") forbid(principal, action, resource) when { resource.latency > 5 };',
    )
    with pytest.raises(PolicyLoadError) as caught:
        engine(DEFAULT, typo)
    (problem,) = caught.value.problems
    assert (problem.file, problem.policy, problem.line) == (str(typo), "typo", 1)
    assert "latency" in problem.message


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.cedar": '@id("p") permit(principal, action, resource);'} | {"b.cedar": '@id("p") '
          'permit(principal, action, resource);'}, "duplicate policy id"),
        ({"f.cedar": 'forbid(principal, action, resource) when { resource.samples > 1 };'},
         'no policy permits Sluice::Action::"route"'),
        ({"p.cedar": 'permit(principal, action == Sluice::Action::"prefer", resource);'},
         'no policy permits Sluice::Action::"route"'),
        ({"t.cedar": 'permit(principal, action == Sluice::Action::"teleport", resource);'},
         "unrecognized action"),
    ],
)  # fmt: skip
def test_load_problems(
    write: Callable[[str, str], Path], files: dict[str, str], message: str
) -> None:
    paths = [write(name, text) for name, text in files.items()]
    with pytest.raises(PolicyLoadError, match=message):
        engine(*paths)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError) as caught:
        engine(tmp_path / "nope.cedar", tmp_path)
    assert [p.message for p in caught.value.problems] == [
        "no such file or directory",
        "no .cedar files in this directory",
    ]


def test_a_file_named_twice_is_loaded_once() -> None:
    ids = [p.id for p in engine(EXAMPLES, DEFAULT).policies()]
    assert ids == [p.id for p in engine(EXAMPLES).policies()]
    assert len(ids) == 4


def test_reload_applies_changes_without_restart(write: Callable[[str, str], Path]) -> None:
    extra = write("extra.cedar", '@id("none") forbid(principal, action, resource) when { false };')
    policy = engine(DEFAULT, extra)
    candidates = [dep("a/1"), dep("b/1")]
    assert policy.evaluate(candidates, req()).order == ["a/1", "b/1"]
    write(
        "extra.cedar",
        '@id("no-a") forbid(principal, action, resource) when { resource.provider == "a" };',
    )
    result = policy.reload()
    assert result.ok
    assert result.generation == 2
    assert result.policies == ("default-route", "no-a")
    assert policy.evaluate(candidates, req()).order == ["b/1"]


def test_failed_reload_keeps_the_active_set(write: Callable[[str, str], Path]) -> None:
    extra = write(
        "extra.cedar",
        '@id("no-a") forbid(principal, action, resource) when { resource.provider == "a" };',
    )
    policy = engine(DEFAULT, extra)
    write("extra.cedar", "forbid(principal, action, resource) when {")
    result = policy.reload()
    assert not result.ok
    assert result.generation == 1
    assert result.policies == ("default-route", "no-a")
    assert [p.file for p in result.problems] == [str(extra)]
    assert result.as_dict()["problems"][0]["file"] == str(extra)  # type: ignore[index]
    assert policy.evaluate([dep("a/1"), dep("b/1")], req()).order == ["b/1"]


def test_reload_with_new_paths_turns_policies_on_and_off() -> None:
    policy = PolicyEngine(clock=FakeClock())
    assert not policy.enabled
    assert policy.reload([DEFAULT, ERROR_RATE]).ok
    assert policy.enabled
    assert policy.evaluate([dep("a/1", error_rate_bp=9000)], req()).order == []
    assert policy.reload([]).ok
    assert policy.evaluate([dep("a/1", error_rate_bp=9000)], req()).order == ["a/1"]


def test_no_policies_is_a_pass_through_without_cedar(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("cedar must not be called")

    monkeypatch.setattr(cedarpy, "is_authorized_batch", refuse)
    policy = PolicyEngine()
    policy.load()
    candidates = [dep("a/1", error_rate_bp=9000), dep("b/1")]
    decision = policy.evaluate(candidates, req(sla_ms=1))
    assert decision.order == ["a/1", "b/1"]
    assert decision.forbidden == {}
    assert policy.explain(candidates, req())["enabled"] is False


def test_reads_health_tells_callers_what_to_fill_in(write: Callable[[str, str], Path]) -> None:
    assert not PolicyEngine().reads_health
    assert not engine(DEFAULT, SELF_HOSTED).reads_health
    assert engine(DEFAULT, SLA).reads_health
    assert engine(
        write("all.cedar", "permit(principal, action, resource) when { resource == resource };")
    ).reads_health


def test_evaluate_before_load_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="load"):
        PolicyEngine([DEFAULT]).evaluate([dep("a/1")], req())


def test_a_forbid_on_prefer_vetoes_a_preference(write: Callable[[str, str], Path]) -> None:
    veto = write(
        "veto.cedar",
        '@id("never-prefer-b") forbid(principal, action == Sluice::Action::"prefer", resource) '
        'when { resource.provider == "b" };',
    )
    policy = engine(DEFAULT, SELF_HOSTED, veto)
    candidates = [dep("a/1"), dep("b/1", self_hosted=True), dep("c/1", self_hosted=True)]
    low = req(budget_remaining_micros=0, budget_limit_micros=1)
    decision = policy.evaluate(candidates, low)
    assert decision.order == ["c/1", "a/1", "b/1"]
    assert decision.outcomes[1].preference_forbidden_by == ("never-prefer-b",)


def test_arrange_orders_and_filters_objects() -> None:
    policy = engine(DEFAULT, SELF_HOSTED)
    candidates = [dep("a/1"), dep("b/1", self_hosted=True)]
    decision = policy.evaluate(candidates, req(budget_remaining_micros=0, budget_limit_micros=1))
    assert decision.arrange(candidates, key=lambda d: d.key) == candidates[::-1]


# Cache


def test_outcomes_are_cached_per_deployment() -> None:
    policy = engine(EXAMPLES)
    candidates = [dep("a/1"), dep("b/1", self_hosted=True)]
    for _ in range(3):
        policy.evaluate(candidates, req(key_id="k1"))
        policy.evaluate(candidates, req(key_id="k2"))  # these policies ignore the principal
    assert policy.cache_stats() == {"hits": 10, "misses": 2, "entries": 2}


def test_cached_health_is_at_most_ttl_old() -> None:
    clock = FakeClock()
    policy = engine(DEFAULT, SLA, clock=clock, health_ttl_s=1.0)
    sla = req(sla_ms=500)
    assert policy.evaluate([dep("a/1", latency_ms=300)], sla).order == ["a/1"]
    clock.advance(0.5)
    assert policy.evaluate([dep("a/1", latency_ms=800)], sla).order == ["a/1"]  # stale
    clock.advance(0.5)
    assert policy.evaluate([dep("a/1", latency_ms=800)], sla).order == []
    # Explanations always evaluate afresh.
    assert policy.explain([dep("a/1", latency_ms=300)], sla)["order"] == ["a/1"]


def test_thresholds_make_drifting_figures_share_cache_entries() -> None:
    policy = engine(DEFAULT, ERROR_RATE, health_ttl_s=0.0)
    for rate in (0, 120, 130, 499, 500):
        assert policy.evaluate([dep("a/1", error_rate_bp=rate)], req()).order == ["a/1"]
    for rate in (501, 1000, 9999):
        assert policy.evaluate([dep("a/1", error_rate_bp=rate)], req()).order == []
    # Three classes for "> 500": below, equal, above.
    assert policy.cache_stats()["misses"] == 3


def test_principal_policies_key_the_cache_by_principal(write: Callable[[str, str], Path]) -> None:
    interns = write(
        "interns.cedar",
        '@id("interns-local-only") forbid(principal in Sluice::Team::"interns", '
        'action == Sluice::Action::"route", resource) unless { resource.self_hosted };',
    )
    policy = engine(DEFAULT, interns)
    candidates = [dep("cloud/1"), dep("local/1", self_hosted=True)]
    assert policy.evaluate(candidates, req(team_id="interns")).order == ["local/1"]
    assert policy.evaluate(candidates, req(team_id="staff")).order == ["cloud/1", "local/1"]
    assert policy.evaluate(candidates, req(team_id="interns")).order == ["local/1"]


def test_policies_reading_other_deployments_are_never_cached(
    write: Callable[[str, str], Path],
) -> None:
    rel = write(
        "relative.cedar",
        '@id("backup-only-when-main-slow") forbid(principal, action, '
        'resource == Sluice::Deployment::"backup/1") '
        'when { Sluice::Deployment::"main/1".latency_ms < 1000 };',
    )
    policy = engine(DEFAULT, rel)
    assert not analyse(load([DEFAULT, rel]).est).exact
    fast, slow = dep("main/1", latency_ms=100), dep("main/1", latency_ms=5000)
    assert policy.evaluate([fast, dep("backup/1")], req()).order == ["main/1"]
    assert policy.evaluate([slow, dep("backup/1")], req()).order == ["main/1", "backup/1"]
    assert policy.cache_stats()["entries"] == 0


_rates = st.integers(-1, 10_000)
_latencies = st.integers(-1, 120_000)


@settings(max_examples=60, deadline=None)
@given(
    facts=st.lists(
        st.tuples(st.booleans(), st.integers(0, 200), _rates, _latencies),
        min_size=1,
        max_size=5,
    ),
    budget=st.one_of(st.none(), st.integers(0, 1000)),
    sla=st.one_of(st.none(), st.integers(1, 120_000)),
)
def test_cached_decisions_equal_fresh_ones(
    facts: list[tuple[bool, int, int, int]], budget: int | None, sla: int | None
) -> None:
    policy = _examples_engine()
    candidates = [
        dep(f"d/{i}", self_hosted=s, samples=n, error_rate_bp=e, latency_ms=lat)
        for i, (s, n, e, lat) in enumerate(facts)
    ]
    request = req(
        budget_remaining_micros=budget,
        budget_limit_micros=None if budget is None else 1000,
        sla_ms=sla,
    )
    cached = policy.evaluate(candidates, request)
    fresh = policy.explain(candidates, request)
    assert cached.order == fresh["order"]
    assert cached.forbidden == fresh["forbidden"]
    assert cached.preferred == fresh["preferred"]


@functools.cache
def _examples_engine() -> PolicyEngine:
    """One engine across examples, so its cache fills up as hypothesis explores."""
    return engine(EXAMPLES, health_ttl_s=0.0)


@given(
    value=st.integers(-(2**63), 2**63 - 1), literals=st.sets(st.integers(-1000, 1000), min_size=1)
)
def test_canonical_values_compare_like_the_original(value: int, literals: set[int]) -> None:
    ordered = tuple(sorted(literals))
    same = canonical(value, ordered)
    for literal in ordered:
        assert (same < literal) == (value < literal)
        assert (same == literal) == (value == literal)


# Facts


def test_unit_helpers() -> None:
    assert basis_points(0.05) == 500
    assert basis_points(1.5) == 10_000
    assert micros_per_mtok(2.5) == 2_500_000
    assert micros_per_mtok(None) == -1
    assert req(budget_remaining_micros=199, budget_limit_micros=1000).budget_remaining_pct == 19
    assert req(budget_remaining_micros=-5, budget_limit_micros=1000).budget_remaining_pct == 0
    assert req(budget_remaining_micros=5, budget_limit_micros=None).budget_remaining_pct == -1


def test_sla_header() -> None:
    assert parse_sla_header(None) is None
    assert parse_sla_header(b" 750 ") == 750
    for bad in ("0", "-5", "1.5", "soon", "99999999999", "٣"):
        with pytest.raises(GatewayError) as caught:
            parse_sla_header(bad)
        assert caught.value.kind is ErrorKind.CALLER_BAD_REQUEST
        assert caught.value.param == "x-sluice-latency-sla-ms"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"type": "mock"}, True),
        ({"type": "ollama"}, True),
        ({"type": "vllm", "base_url": "http://gpu-box.internal:8000/v1"}, True),
        ({"type": "openai"}, False),
        ({"type": "anthropic"}, False),
        ({"type": "openai_compatible", "base_url": "http://10.1.2.3:8000/v1"}, True),
        ({"type": "openai_compatible", "base_url": "http://[::1]:8000/v1"}, True),
        ({"type": "openai_compatible", "base_url": "http://inference:8000/v1"}, True),
        ({"type": "openai_compatible", "base_url": "https://api.example.com/v1"}, False),
        ({"type": "openai_compatible", "base_url": "https://8.8.8.8/v1"}, False),
    ],
)
def test_is_self_hosted(config: dict[str, str], expected: bool) -> None:
    assert is_self_hosted(ProviderConfig(**config)) is expected  # type: ignore[arg-type]


def test_is_self_hosted_override() -> None:
    assert is_self_hosted(ProviderConfig(type="openai"), override=True)
    assert not is_self_hosted(ProviderConfig(type="ollama"), override=False)


def test_facts_from_the_table_and_the_stats() -> None:
    clock = FakeClock()
    stats = DeploymentStats(clock, window_s=60, stale_s=300)
    deployment = Deployment(
        key="local/llama",
        provider_name="local",
        provider=cast(Provider, None),
        upstream_model="llama3",
        weight=1.0,
        priority=1,
        timeouts=Timeouts(),
        provider_type="ollama",
    )
    entry = ModelEntry("chat", (), (deployment,), created=0)
    static = static_facts(entry, deployment, self_hosted=True, output_usd_per_mtok=0.5)
    assert (static.public_model, static.model, static.provider_type) == ("chat", "llama3", "ollama")
    assert (static.output_micros_per_mtok, static.input_micros_per_mtok) == (500_000, -1)
    fresh = with_health(static, stats)
    assert (fresh.samples, fresh.error_rate_bp, fresh.latency_ms, fresh.in_flight) == (0, -1, -1, 0)
    for ok in (True, True, True, False):
        stats.begin(deployment.key)
        stats.end(deployment.key, ok=ok, latency_ms=400.0, ttft_ms=90.0)
    stats.begin(deployment.key)
    live = with_health(static, stats)
    assert (live.samples, live.error_rate_bp, live.latency_ms, live.ttft_ms) == (4, 2500, 400, 90)
    assert live.in_flight == 1
    clock.advance(301)  # averages gone stale, window empty: unknown again, so it is retried
    assert (with_health(static, stats).latency_ms, with_health(static, stats).samples) == (-1, 0)


def test_split_statements_knows_strings_and_comments() -> None:
    text = '// a; b\n@id("x;y") permit(principal, action, resource);\n  forbid(\n p, a, r)'
    assert split_statements(text) == [
        (2, '@id("x;y") permit(principal, action, resource);'),
        (3, "forbid(\n p, a, r)"),
    ]
