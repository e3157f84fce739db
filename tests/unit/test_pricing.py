"""Prices: config overrides, genai-prices' bundled table (offline), cache rates, rounding."""

from __future__ import annotations

import logging
import socket
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.budgets import Cost, Pricer
from sluice.budgets.pricing import Rates
from sluice.clock import FakeClock
from sluice.config.model import Prices
from sluice.types import Usage

NOW = 1_780_000_000.0  # 2026-05-28


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer(FakeClock(NOW))


def test_a_known_model_is_priced_from_genai_prices(pricer: Pricer) -> None:
    # gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
    cost = pricer.cost(Usage(1000, 500), provider="openai", model="gpt-4o-mini")
    assert cost == Cost(150 + 300, "genai-prices") and cost.priced


def test_cached_tokens_are_priced_at_the_cache_rates(pricer: Pricer) -> None:
    # gpt-4o-mini reads its prompt cache at $0.075 per million.
    usage = Usage(prompt_tokens=1000, completion_tokens=500, cached_tokens=400)
    assert pricer.cost(usage, provider="openai", model="gpt-4o-mini").micros == 90 + 30 + 300
    # claude-3-5-haiku: input $0.80, cache write $1.00, cache read $0.08, output $4 per million.
    usage = Usage(
        prompt_tokens=10_000, completion_tokens=100, cached_tokens=5000, cache_write_tokens=2000
    )
    cost = pricer.cost(usage, provider="anthropic", model="claude-3-5-haiku")
    assert cost.micros == 2400 + 400 + 2000 + 400  # 3000 uncached, 5000 read, 2000 written


def test_the_config_override_wins(pricer: Pricer) -> None:
    prices = Prices(input_usd_per_mtok=1.0, output_usd_per_mtok=2.5)
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=600)
    cost = pricer.cost(usage, provider="openai", model="gpt-4o-mini", prices=prices)
    assert cost == Cost(1000 + 250, "override")  # one input rate, cached tokens included
    assert pricer.cost(usage, provider="mock", model="chat", prices=prices) == cost


def test_provider_aliases_resolve_through_the_table(pricer: Pricer) -> None:
    gemini = pricer.cost(Usage(1000, 1000), provider="gemini", model="gemini-1.5-flash")
    google = pricer.cost(Usage(1000, 1000), provider="google", model="gemini-1.5-flash")
    assert gemini == google and gemini.micros > 0


def test_an_unknown_model_costs_zero_and_preload_names_it(pricer: Pricer) -> None:
    first = pricer.cost(Usage(1000, 1000), provider="openai", model="no-such-model-x1")
    again = pricer.cost(Usage(5, 5), provider="openai", model="no-such-model-x1")
    local = pricer.cost(Usage(5, 5), provider="ollama", model="llama3.2")
    assert first == again == local == Cost(0, "unpriced")
    assert not first.priced
    pairs = [("openai", "gpt-4o-mini"), ("openai", "no-such-model-x1")]
    assert pricer.preload(pairs) == [("openai", "no-such-model-x1")]


def test_unpriced_models_are_reported_once_in_the_configs_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sluice.clock import FakeClock
    from sluice.config.loader import parse_config
    from sluice.lifespan import _pricer

    config = parse_config(
        """
providers:
  main: {type: openai, api_key: env:X}
  m: {type: mock}
models:
  - name: house-model
    deployments: [{provider: main, model: no-such-model-x1}, {provider: main, model: gpt-4o}]
  - name: demo
    deployments: [{provider: m, model: "chat?status=503"}]
""",
        source="t.yaml",
    )
    with caplog.at_level(logging.WARNING, logger="sluice"):
        _pricer(config, FakeClock())
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("model 'house-model': no known price for main/no-such-model-x1;")
    assert "chat?" not in warning


def test_estimate_is_the_prompt_plus_max_tokens(pricer: Pricer) -> None:
    estimate = pricer.estimate(
        prompt_tokens=2000, max_tokens=1000, provider="openai", model="gpt-4o-mini"
    )
    assert estimate == Cost(300 + 600, "genai-prices")
    prices = Prices(input_usd_per_mtok=0.15, output_usd_per_mtok=0.60)  # mock-gpt's
    assert pricer.estimate(
        prompt_tokens=2000, max_tokens=1000, provider="mock", model="chat", prices=prices
    ) == Cost(900, "override")


def test_amounts_round_half_up_to_the_micro_dollar(pricer: Pricer) -> None:
    prices = Prices(input_usd_per_mtok=0.15, output_usd_per_mtok=0.0)
    micros = [
        pricer.cost(Usage(n, 0), provider="mock", model="chat", prices=prices).micros
        for n in (3, 4, 10)
    ]
    assert micros == [0, 1, 2]  # 0.45, 0.6, 1.5
    assert Rates(Decimal("0.5"), Decimal(0), Decimal(0), Decimal(0)).micros((1, 0, 0, 0)) == 1


def _reference(usage: Usage, provider: str, model: str) -> int:
    import genai_prices

    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.prompt_tokens,
            cache_read_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.completion_tokens,
        ),
        model,
        provider_id=provider,
    )
    return int((calc.total_price * 1_000_000).to_integral_value())


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-20250514"),
        ("cohere", "command-r"),
        ("google", "gemini-1.5-pro"),  # tiered: priced by genai-prices on every call
    ],
)
@pytest.mark.parametrize("prompt", [1234, 300_000])
def test_the_cached_rates_agree_with_genai_prices(
    pricer: Pricer, provider: str, model: str, prompt: int
) -> None:
    usage = Usage(prompt_tokens=prompt, completion_tokens=777, cached_tokens=prompt // 3)
    assert pricer.cost(usage, provider=provider, model=model).micros == pytest.approx(
        _reference(usage, provider, model), abs=1
    )


def test_tiered_prices_depend_on_the_prompt_size(pricer: Pricer) -> None:
    small = pricer.cost(Usage(100_000, 0), provider="google", model="gemini-1.5-pro")
    large = pricer.cost(Usage(200_000, 0), provider="google", model="gemini-1.5-pro")
    assert large.micros > 2 * small.micros


def test_pricing_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pricing tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = Pricer(FakeClock(NOW))
    fresh.preload([("openai", "gpt-4.1-mini"), ("anthropic", "claude-3-5-haiku")])
    assert fresh.cost(Usage(10, 10), provider="openai", model="gpt-4.1-mini").priced
    assert fresh.cost(Usage(10, 10), provider="google", model="gemini-1.5-pro").priced


@settings(max_examples=300)
@given(
    rates=st.lists(
        st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False), min_size=4, max_size=4
    ),
    split=st.tuples(*[st.integers(min_value=0, max_value=10**8)] * 4),
)
def test_integer_pricing_equals_decimal_pricing(rates: list[Decimal], split: Any) -> None:
    r = Rates(*rates)
    exact = sum((n * rate for n, rate in zip(split, rates, strict=True)), Decimal(0))
    assert r.micros(split) == int(exact.to_integral_value(ROUND_HALF_UP))


def test_rates_beyond_the_integer_scale_fall_back_to_decimal() -> None:
    fine = Decimal("0.0000000000001")  # 13 decimals
    r = Rates(fine, fine, fine, Decimal("1"))
    assert r._scaled is None
    assert r.micros((10**13, 0, 0, 2)) == 3
