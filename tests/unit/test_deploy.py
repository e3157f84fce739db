"""deploy/: the Grafana dashboard and the Prometheus rules parse, and every metric their
PromQL names is one Sluice exports; the compose example's files exist and its gateway
config is valid."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.config.loader import parse_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _exported() -> dict[str, str]:
    """The metrics Sluice exports (name → type), read from the real registry."""
    from sluice.observability.metrics import Metrics

    metrics = Metrics(model_label=lambda name: name, provider_of={})
    out: dict[str, str] = {}
    for family in metrics.registry.collect():
        name = family.name
        if family.type == "counter":
            name += "_total"
        out[name] = family.type
    return out


METRICS: dict[str, str] = _exported()
PROMETHEUS_OWN = {"up"}
"""Series Prometheus itself writes for every scrape target."""

_KEYWORDS = {"and", "or", "unless", "bool", "offset"}
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def series_names(expr: str) -> set[str]:
    """The series a PromQL expression selects: identifiers that are not functions,
    keywords, label names or inside strings, matchers or ranges."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)\s*(\()?", text):
        if match.group(2) is None and match.group(1) not in _KEYWORDS:
            names.add(match.group(1))
    return names


def metric_of(series: str) -> str | None:
    """The exported metric a series belongs to (histograms export three series each)."""
    if series in METRICS:
        return series
    for suffix in _HISTOGRAM_SERIES:
        base = series.removesuffix(suffix)
        if base != series and METRICS.get(base) == "histogram":
            return base
    return None


def test_the_extractor_reads_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{model=~"$m", x="y{z}"}'
        "[$__rate_interval]))) > 3 and on (job) up == 0 unless scalar(b) > bool 1e3"
    )
    assert series_names(expr) == {"a_bucket", "up", "b"}


def _dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "sluice-dashboard.json").read_text())


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out += _panels(panel.get("panels", []))
    return out


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "prometheus" / "sluice-alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _check(exprs: list[str]) -> set[str]:
    used = set()
    for expr in exprs:
        for series in series_names(expr):
            if series in PROMETHEUS_OWN:
                continue
            metric = metric_of(series)
            assert metric is not None, f"{series!r} in {expr!r} is not a Sluice metric"
            used.add(metric)
    return used


def test_dashboard_parses_and_uses_only_exported_metrics() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "sluice-gateway" and dashboard["title"]
    panels = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    assert len({p["id"] for p in _panels(dashboard["panels"])}) == len(_panels(dashboard["panels"]))
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert all(p["targets"] and p["datasource"]["uid"] == "${datasource}" for p in panels)
    variables = dashboard["templating"]["list"]
    exprs += [
        m.group(1)
        for v in variables
        if v["type"] == "query"
        for m in [re.match(r"label_values\((\w+),", v["query"]["query"])]
        if m is not None
    ]
    used = _check(exprs)
    assert used == set(METRICS), f"not on the dashboard: {sorted(set(METRICS) - used)}"


def test_alert_rules_parse_and_use_only_exported_metrics() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    used = _check([r["expr"] for r in rules])
    assert {
        "sluice_requests_total",
        "sluice_request_duration_seconds",
        "sluice_breaker_state",
        "sluice_usage_flush_errors_total",
        "sluice_usage_queue_depth",
        "sluice_budget_rejected_total",
    } <= used
    assert any("up" in series_names(r["expr"]) for r in rules)  # scrape down


def test_compose_mounts_files_that_exist_and_its_gateway_config_is_valid() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {"sluice", "postgres", "redis", "prometheus", "grafana"} <= set(compose["services"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
    build = compose["services"]["sluice"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).exists()
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["job_name"] == "sluice"
    config = parse_config((DEPLOY / "sluice.yaml").read_text(), source="deploy/sluice.yaml")
    assert config.alerts.webhooks[0].url.env_name == "SLACK_WEBHOOK_URL"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    folder = DEPLOY / "prometheus"
    for args in (
        ["check", "rules", "sluice-alerts.yml"],
        ["test", "rules", "sluice-alerts.test.yml"],
    ):
        done = subprocess.run(
            ["promtool", *args], cwd=folder, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
