"""Provider config: one model per family (the registry's ``config`` column), so a field
another family uses is an error naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from sluice.cli import app
from sluice.config import ConfigError, SecretRef
from sluice.config.loader import parse_config
from sluice.config.providers import (
    CONFIG_MODELS,
    BedrockConfig,
    OpenAIConfig,
    VertexConfig,
    accepted_by,
    validate_provider,
)
from sluice.config.secrets import Secrets
from sluice.credentials.resolve import ProviderCredentials
from sluice.providers.registry import PROVIDER_TYPES

FOREIGN = [
    ("openai", "region: eu-west-1", "region"),
    ("azure", "project: p", "project"),
    ("ollama", "access_key_id: AKID", "access_key_id"),
    ("anthropic", "location: us-east5", "location"),
    ("gemini", "credentials: sa.json", "credentials"),
    ("cohere", "api_version: v2", "api_version"),
    ("vertex", "api_key: k", "api_key"),
    ("bedrock", "api_version: v1", "api_version"),
    ("mock", "api_key: k", "api_key"),
]


def test_every_registry_row_names_a_config_model() -> None:
    families = {spec.config for spec in PROVIDER_TYPES.values()}
    assert families == set(CONFIG_MODELS)
    for name, spec in PROVIDER_TYPES.items():
        base_url = {"base_url": "http://127.0.0.1:1/v1"} if spec.options else {}
        assert isinstance(validate_provider({"type": name, **base_url}), CONFIG_MODELS[spec.config])
    # OpenAI-compatible rows share one model.
    assert {n for n, s in PROVIDER_TYPES.items() if s.options} == {
        n for n, s in PROVIDER_TYPES.items() if s.config == "openai"
    }


@pytest.mark.parametrize(("kind", "line", "field"), FOREIGN)
def test_a_foreign_field_is_an_error_with_file_line_and_field(
    kind: str, line: str, field: str
) -> None:
    text = f"providers:\n  p:\n    type: {kind}\n    {line}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="gw.yaml")
    [problem] = info.value.problems
    assert (problem.path, problem.line) == (f"providers.p.{field}", 4)
    assert problem.message.startswith(f"unknown key {field!r} for provider type {kind!r}")
    assert str(problem).startswith(f"gw.yaml:4: providers.p.{field}: unknown key")
    for family in accepted_by(field):
        assert family in problem.message


def test_check_config_refuses_a_foreign_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  oa: {type: openai, api_key: k, region: eu-west-1}\n")
    result = CliRunner().invoke(app, ["check-config", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: providers.oa.region: unknown key 'region'" in result.output
    assert "bedrock" in result.output


def test_an_unknown_type_reports_only_the_type() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("providers:\n  p: {type: nosuch, region: x}\n", source="c.yaml")
    [problem] = info.value.problems
    assert problem.path == "providers.p.type" and "known types" in problem.message
    with pytest.raises(ConfigError) as info:
        parse_config("providers:\n  p: {base_url: http://x}\n", source="c.yaml")
    assert [p.path for p in info.value.problems] == ["providers.p.type"]


def test_validate_provider_checks_one_mapping_by_type() -> None:
    bedrock = validate_provider({"type": "bedrock", "region": "eu-west-1"})
    assert isinstance(bedrock, BedrockConfig) and bedrock.region == "eu-west-1"
    azure = validate_provider({"type": "azure", "base_url": "https://x", "api_version": "1"})
    assert isinstance(azure, OpenAIConfig) and azure.api_key_ref is None
    with pytest.raises(ValidationError) as info:
        validate_provider({"type": "groq", "session_token": "t"})
    [error] = info.value.errors()
    assert error["type"] == "extra_forbidden" and error["loc"][-1] == "session_token"
    with pytest.raises(ValueError, match="not of the vertex family"):
        VertexConfig(type="openai")


def test_secret_references_are_resolved_by_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_TEST_KEY", "sk-env")
    monkeypatch.delenv("SLUICE_TEST_UNSET", raising=False)
    credentials = ProviderCredentials(
        {"a": SecretRef("env:SLUICE_TEST_KEY"), "b": SecretRef("env:SLUICE_TEST_UNSET"), "c": None}
    )
    assert credentials.get("a") == "sk-env" and credentials.get("b") is None
    assert dict(credentials) == {"a": "sk-env"}
    credentials.set_stored({"b": "sk-stored", "a": "sk-replaced"})
    assert (credentials["a"], credentials["b"]) == ("sk-replaced", "sk-stored")
    with pytest.raises(KeyError):
        credentials["c"]
    aws = validate_provider(
        {"type": "bedrock", "access_key_id": "AKID", "secret_access_key": "env:SLUICE_TEST_KEY"}
    )
    assert isinstance(aws, BedrockConfig)
    secrets = Secrets.resolve(aws.credential_refs())
    assert secrets.value(aws.secret_access_key) == "sk-env"
    assert secrets.value(aws.access_key_id) == "AKID"
    assert "sk-env" not in repr(secrets) and "AKID" not in repr(secrets)
