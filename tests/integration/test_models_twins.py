"""Every validation error of a model or provider in the config file has its admin API twin:
the same message, the API's ``param`` being the file's path inside the entry, and nothing
applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.config.loader import ConfigError, parse_config
from tests.integration.conftest import make_settings, running

DEP = {"provider": "mock", "model": "chat"}


def _model(**fields: Any) -> dict[str, Any]:
    return {"name": "m", "deployments": [DEP], **fields}


MODEL_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("unknown key", _model(colour="red"), "colour"),
    ("missing name", {"deployments": [DEP]}, "name"),
    ("empty name", _model(name=""), "name"),
    ("no deployment", _model(deployments=[]), "deployments"),
    ("zero weight", _model(deployments=[{**DEP, "weight": 0}]), "deployments[0].weight"),
    ("retries", _model(deployments=[{**DEP, "retries": 11}]), "deployments[0].retries"),
    ("deployment key", _model(deployments=[{**DEP, "zone": "eu"}]), "deployments[0].zone"),
    ("no upstream", _model(deployments=[{"provider": "mock"}]), "deployments[0].model"),
    ("strategy", _model(strategy="fastest"), "strategy"),
    ("max_n", _model(max_n=0), "max_n"),
    ("max_output", _model(max_output_tokens=0), "max_output_tokens"),
    ("price", _model(prices={"input_usd_per_mtok": -1}), "prices.input_usd_per_mtok"),
    ("price key", _model(prices={"per_call": 1}), "prices.per_call"),
    ("capability", _model(capabilities=["telepathy"]), "capabilities"),
    ("window", _model(context_window_tokens=0), "context_window_tokens"),
    ("aliases type", _model(aliases="m2"), "aliases"),
    ("provider", _model(deployments=[{**DEP, "provider": "nowhere"}]), "deployments[0].provider"),
    ("fallback", _model(fallbacks=["ghost"]), "fallbacks[0]"),
    ("cw fallback", _model(context_window_fallbacks=["ghost"]), "context_window_fallbacks[0]"),
    ("alias twice", _model(aliases=["m"]), "aliases[0]"),
]

PROVIDER_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("unknown type", {"type": "warp"}, "type"),
    ("no type", {"base_url": "http://x"}, "type"),
    ("unknown key", {"type": "mock", "colour": "red"}, "colour"),
    ("foreign key", {"type": "openai", "region": "eu-west-1"}, "region"),
    ("base url", {"type": "openai", "base_url": "ftp://x"}, "base_url"),
    ("timeout", {"type": "mock", "timeouts": {"connect_s": 0}}, "timeouts.connect_s"),
    ("timeout key", {"type": "mock", "timeouts": {"read_s": 1}}, "timeouts.read_s"),
    ("headers", {"type": "mock", "headers": ["a"]}, "headers"),
    ("aws pair", {"type": "bedrock", "access_key_id": "env:AWS_ID"}, None),
    ("empty env ref", {"type": "openai", "api_key": "env:"}, "api_key"),
]


def _file_problem(text: str) -> tuple[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="twin.yaml")
    problem = caught.value.problems[0]
    full = f"{problem.path}: {problem.message}" if problem.path else problem.message
    return problem.path, full


def _inside(full: str, prefix: str) -> str:
    """A file error's text as said of the entry itself (its path without ``prefix``)."""
    for cut in (prefix + ".", prefix + ": ", prefix):
        if full.startswith(cut):
            return full[len(cut) :]
    return full


@pytest.mark.parametrize(
    ("kind", "spec", "param"),
    [pytest.param("model", s, p, id=f"model-{n}") for n, s, p in MODEL_CASES]
    + [pytest.param("provider", s, p, id=f"provider-{n}") for n, s, p in PROVIDER_CASES],
)
async def test_every_file_error_has_its_api_twin(
    tmp_path: Path, kind: str, spec: dict[str, Any], param: str | None
) -> None:
    if kind == "model":
        document = {"providers": {"mock": {"type": "mock"}}, "models": [spec]}
        prefix, path, body = "models[0]", "/api/v1/models", spec
    else:
        document = {"providers": {"mock": {"type": "mock"}, "p": spec}}
        prefix, path, body = "providers.p", "/api/v1/providers", {"name": "p", **spec}
    file_path, file_text = _file_problem(yaml.safe_dump(document))
    expected_path = f"{prefix}.{param}" if param else prefix
    assert file_path in (expected_path, ""), file_path
    settings = make_settings(tmp_path, secret_key="correct horse battery staple")
    async with running(settings) as (app, client):
        assert app.control is not None
        before = app.control.catalog.current
        resp = await client.post(path, json=body)
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["param"] == param
        assert error["message"] == _inside(file_text, prefix)
        assert app.control.catalog.current is before
        assert (await client.get("/api/v1/models")).status_code == 200
