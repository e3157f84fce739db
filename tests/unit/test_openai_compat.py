from __future__ import annotations

import orjson
import pytest

from sluice.config.providers import validate_provider
from sluice.credentials.resolve import ProviderCredentials
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.build import build_provider
from sluice.providers.openai_compat import OpenAICompatibleProvider, upstream_body
from sluice.providers.registry import PROVIDER_TYPES
from sluice.types import Endpoint, ProviderRequest


def _req(
    body: dict[str, object], *, stream: bool = False, include_usage: bool = False
) -> ProviderRequest:
    raw = orjson.dumps(body)
    return ProviderRequest(Endpoint.CHAT, body, raw, str(body["model"]), stream, include_usage)


def test_body_is_forwarded_untouched_when_nothing_changes() -> None:
    req = _req({"model": "gpt-4o-mini", "messages": [], "logprobs": True, "seed": 1})
    assert upstream_body(req, "gpt-4o-mini", stream_usage=True) is req.raw


def test_model_is_renamed_and_everything_else_kept() -> None:
    req = _req({"model": "fast", "messages": [], "tools": [{"type": "function"}], "n": 2})
    out = orjson.loads(upstream_body(req, "llama3.2", stream_usage=True))
    assert out == {"model": "llama3.2", "messages": [], "tools": [{"type": "function"}], "n": 2}


def test_stream_asks_for_usage_without_touching_other_options() -> None:
    req = _req({"model": "m", "stream": True, "stream_options": {"x": 1}}, stream=True)
    out = orjson.loads(upstream_body(req, "m", stream_usage=True))
    assert out["stream_options"] == {"x": 1, "include_usage": True}
    asked = _req({"model": "m", "stream": True}, stream=True, include_usage=True)
    assert upstream_body(asked, "m", stream_usage=True) is asked.raw
    assert upstream_body(req, "m", stream_usage=False) is req.raw


def _provider(type_: str, **cfg: object) -> OpenAICompatibleProvider:
    provider = build_provider("p", validate_provider({"type": type_, **cfg}))
    assert isinstance(provider, OpenAICompatibleProvider)
    return provider


def _auth_headers(type_: str, **cfg: object) -> dict[str, str]:
    """The headers for the key the core resolves (as the pipeline hands it over)."""
    config = validate_provider({"type": type_, **cfg})
    credential = ProviderCredentials({"p": config.api_key_ref}).get("p")
    return _provider(type_, **cfg)._auth_headers(credential)


def test_every_family_row_builds_with_its_default_url() -> None:
    for name, spec in PROVIDER_TYPES.items():
        if spec.options is None or spec.options.default_base_url is None:
            continue
        provider = _provider(name)
        assert provider._url(Endpoint.CHAT, "m").startswith(spec.options.default_base_url)


def test_azure_paths_and_api_key_header() -> None:
    azure: dict[str, object] = {
        "base_url": "https://acme.openai.azure.com",
        "api_key": "az-secret",
        "api_version": "2024-06-01",
    }
    provider = _provider("azure", **azure)
    assert provider._url(Endpoint.EMBEDDINGS, "emb-dep") == (
        "https://acme.openai.azure.com/openai/deployments/emb-dep/embeddings?api-version=2024-06-01"
    )
    headers = _auth_headers("azure", **azure)
    assert headers["api-key"] == "az-secret"
    assert "Authorization" not in headers


def test_bearer_auth_from_env_and_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_TEST_KEY", "gsk-1")
    assert _auth_headers("groq", api_key="env:GROQ_TEST_KEY")["Authorization"] == ("Bearer gsk-1")
    monkeypatch.delenv("GROQ_TEST_KEY")
    with pytest.raises(GatewayError) as info:
        _auth_headers("groq", api_key="env:GROQ_TEST_KEY")
    assert info.value.kind is ErrorKind.GATEWAY_UNAVAILABLE
    assert "GROQ_TEST_KEY" in info.value.message
    assert "Authorization" not in _auth_headers("ollama")


def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="base_url is required"):
        _provider("openai_compatible")
