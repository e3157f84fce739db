from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from sluice.config import ConfigError, SecretRef, load_default_config
from sluice.config.loader import parse_config

ISSUE_EXAMPLE = """
providers:
  local: {type: openai_compatible, base_url: http://127.0.0.1:18000/v1, api_key: env:LOCAL_KEY}
models:
  - name: gpt-4o-mini
    deployments:
      - {provider: local, model: gpt-4o-mini}
"""


def test_documented_shape_loads() -> None:
    config = parse_config(ISSUE_EXAMPLE, source="x.yaml")
    provider = config.providers["local"]
    assert provider.type == "openai_compatible"
    assert provider.base_url == "http://127.0.0.1:18000/v1"
    assert provider.api_key == SecretRef("env:LOCAL_KEY")
    dep = config.models[0].deployments[0]
    assert (dep.provider, dep.model, dep.weight, dep.priority) == ("local", "gpt-4o-mini", 1.0, 0)


def test_default_config_serves_the_demo_models_from_mock() -> None:
    config = load_default_config()
    names = {m.name for m in config.models}
    assert {"mock-gpt", "mock-embed", "mock-slow", "mock-error"} <= names
    assert {p.type for p in config.providers.values()} == {"mock"}


def test_unknown_key_is_an_error_with_path_and_line() -> None:
    text = ISSUE_EXAMPLE.replace("model: gpt-4o-mini}", "model: gpt-4o-mini, wieght: 2}")
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="gw.yaml")
    [problem] = info.value.problems
    assert problem.path == "models[0].deployments[0].wieght"
    assert problem.message == "unknown key 'wieght'"
    assert problem.line == 7
    assert str(problem).startswith("gw.yaml:7: models[0].deployments[0].wieght")


def test_every_error_is_reported() -> None:
    text = """
providers:
  a: {type: nosuch}
  b: {type: openai, base_url: ftp://x}
models: []
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.yaml")
    paths = {p.path for p in info.value.problems}
    assert paths == {"providers.a.type", "providers.b.base_url"}
    assert any("known types" in p.message for p in info.value.problems)


def test_deployment_must_name_a_defined_provider() -> None:
    text = ISSUE_EXAMPLE.replace("{provider: local", "{provider: nowhere")
    with pytest.raises(ConfigError, match="unknown provider 'nowhere'"):
        parse_config(text, source="c.yaml")


def test_duplicate_names_and_aliases_are_refused() -> None:
    text = (
        ISSUE_EXAMPLE
        + """
  - name: other
    aliases: [gpt-4o-mini]
    deployments:
      - {provider: local, model: x}
"""
    )
    with pytest.raises(ConfigError, match="already used"):
        parse_config(text, source="c.yaml")


def test_secret_refs_never_show_their_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_KEY", "sk-very-secret")
    config = parse_config(ISSUE_EXAMPLE, source="x.yaml")
    ref = config.providers["local"].api_key
    assert ref is not None
    assert ref.resolve() == "sk-very-secret"
    assert "sk-very-secret" not in repr(config)
    literal = SecretRef("sk-literal-secret")
    assert "sk-literal-secret" not in repr(literal)
    assert "sk-literal-secret" not in str(literal)


def test_config_is_frozen() -> None:
    config = parse_config(ISSUE_EXAMPLE, source="x.yaml")
    with pytest.raises(ValueError, match="frozen"):
        config.models[0].deployments[0].model = "other"  # type: ignore[misc]


def test_check_config_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(ISSUE_EXAMPLE)
    result = CliRunner().invoke(app, ["check-config", str(good)])
    assert result.exit_code == 0, result.output
    assert "ok (1 providers, 1 models)" in result.output

    bad = tmp_path / "bad.yaml"
    bad.write_text(ISSUE_EXAMPLE.replace("base_url:", "baseurl:"))
    result = CliRunner().invoke(app, ["check-config", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:3: providers.local.baseurl: unknown key 'baseurl'" in result.output


def test_invalid_yaml_is_located() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("providers: [\n", source="y.yaml")
    assert info.value.problems[0].message.startswith("invalid YAML")
