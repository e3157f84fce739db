"""Output bounds and the output a request reserves: every choice counts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.config.loader import parse_config
from sluice.errors import BadRequest
from sluice.pipeline import bounds
from sluice.pipeline.parse import provider_request
from sluice.routing.table import (
    DEFAULT_MAX_N,
    DEFAULT_MAX_OUTPUT_TOKENS,
    ModelTable,
    OutputBounds,
)
from sluice.types import Endpoint, ProviderRequest

MSG = [{"role": "user", "content": "hi"}]


def _req(endpoint: Endpoint, body: dict[str, Any]) -> ProviderRequest:
    return ProviderRequest(endpoint, body, orjson.dumps(body), str(body.get("model", "m")))


@pytest.mark.parametrize(
    ("endpoint", "body", "reserve"),
    [
        (Endpoint.CHAT, {"messages": MSG}, bounds.DEFAULT_OUTPUT_RESERVE),
        (Endpoint.CHAT, {"messages": MSG, "max_tokens": 100}, 100),
        (Endpoint.CHAT, {"messages": MSG, "max_tokens": 100, "n": 4}, 400),
        (Endpoint.CHAT, {"messages": MSG, "max_completion_tokens": 50, "n": 3}, 150),
        # Both fields given: the larger one is what the provider may generate.
        (Endpoint.CHAT, {"messages": MSG, "max_tokens": 10, "max_completion_tokens": 70}, 70),
        (Endpoint.CHAT, {"messages": MSG, "n": 2}, 2 * bounds.DEFAULT_OUTPUT_RESERVE),
        (Endpoint.COMPLETIONS, {"prompt": "x", "max_tokens": 10, "best_of": 5}, 50),
        (Endpoint.COMPLETIONS, {"prompt": "x", "max_tokens": 10, "n": 2, "best_of": 3}, 30),
        (Endpoint.COMPLETIONS, {"prompt": ["a", "b"], "max_tokens": 10, "n": 2}, 40),
        (Endpoint.COMPLETIONS, {"prompt": [[1, 2], [3]], "max_tokens": 10}, 20),
        (Endpoint.COMPLETIONS, {"prompt": [1, 2, 3], "max_tokens": 10, "n": 3}, 30),
        (Endpoint.MESSAGES, {"messages": MSG, "max_tokens": 300}, 300),
        (Endpoint.RESPONSES, {"input": "x", "max_output_tokens": 90}, 90),
    ],
)
def test_output_reserve_counts_every_choice(
    endpoint: Endpoint, body: dict[str, Any], reserve: int
) -> None:
    assert bounds.output_reserve(_req(endpoint, {"model": "m", **body})) == reserve


@pytest.mark.parametrize(
    ("endpoint", "field", "extra"),
    [
        (Endpoint.CHAT, "max_tokens", {"messages": MSG}),
        (Endpoint.CHAT, "max_completion_tokens", {"messages": MSG}),
        (Endpoint.COMPLETIONS, "max_tokens", {"prompt": "x"}),
        (Endpoint.MESSAGES, "max_tokens", {"messages": MSG}),
        (Endpoint.RESPONSES, "max_output_tokens", {"input": "x"}),
    ],
)
def test_output_fields_beyond_the_bound_name_the_field(
    endpoint: Endpoint, field: str, extra: dict[str, Any]
) -> None:
    limits = OutputBounds(max_output_tokens=1000, max_n=4)
    bounds.check(_req(endpoint, {"model": "m", field: 1000, **extra}), limits)
    with pytest.raises(BadRequest) as info:
        bounds.check(_req(endpoint, {"model": "m", field: 1001, **extra}), limits)
    assert info.value.param == field and info.value.status == 400
    assert "at most 1000" in info.value.message


@pytest.mark.parametrize("field", ["n", "best_of"])
def test_choices_beyond_the_bound_name_the_field(field: str) -> None:
    limits = OutputBounds(max_output_tokens=1000, max_n=4)
    bounds.check(_req(Endpoint.COMPLETIONS, {"prompt": "x", field: 4}), limits)
    with pytest.raises(BadRequest) as info:
        bounds.check(_req(Endpoint.COMPLETIONS, {"prompt": "x", field: 10**18}), limits)
    assert info.value.param == field


def test_best_of_is_an_integer_not_below_n() -> None:
    for body, param in (
        ({"prompt": "x", "best_of": "2"}, "best_of"),
        ({"prompt": "x", "best_of": 0}, "best_of"),
        ({"prompt": "x", "best_of": 2, "n": 3}, "best_of"),
    ):
        with pytest.raises(BadRequest) as info:
            provider_request(Endpoint.COMPLETIONS, orjson.dumps({"model": "m", **body}))
        assert info.value.param == param
    provider_request(Endpoint.COMPLETIONS, orjson.dumps({"model": "m", "prompt": "x", "n": 2}))


TABLE = """
providers:
  oai: {type: openai, api_key: sk-test}
  m: {type: mock}
models:
  - name: known
    deployments: [{provider: oai, model: gpt-4o}]
  - name: unknown
    deployments: [{provider: m, model: chat}]
  - name: configured
    max_output_tokens: 2048
    max_n: 2
    deployments: [{provider: oai, model: gpt-4o}]
routing:
  wildcards: [{prefix: "oai/", provider: oai}]
"""


def test_model_bounds_come_from_config_else_the_known_window_else_the_default() -> None:
    config = parse_config(TABLE, source="t.yaml")
    windows = {("openai", "gpt-4o"): 128_000, ("openai", "gpt-4o-mini"): 64_000}
    table = ModelTable.build(
        config,
        {"oai": object(), "m": object()},  # type: ignore[dict-item]
        created=0,
        known_window=lambda provider, model: windows.get((provider, model)),
    )
    assert table.resolve("known").bounds == OutputBounds(128_000, DEFAULT_MAX_N)
    assert table.resolve("unknown").bounds == OutputBounds(DEFAULT_MAX_OUTPUT_TOKENS, 128)
    assert table.resolve("configured").bounds == OutputBounds(2048, 2)
    assert table.resolve("oai/gpt-4o-mini").bounds.max_output_tokens == 64_000


def test_the_price_table_knows_context_windows() -> None:
    from sluice.budgets.pricing import known_context_window

    assert known_context_window("openai", "gpt-4o") == 128_000
    assert known_context_window("mock", "chat") is None
