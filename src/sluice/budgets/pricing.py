"""What a request costs, in integer micro-dollars.

A model's ``prices`` in the config win; otherwise the price comes from ``genai-prices``'
bundled table (looked up offline: this module never asks it to fetch updates). A model
neither knows costs 0, reported as ``unpriced`` and logged once.

Cached input tokens are priced at the provider's cache-read rate and cache-write tokens at
its cache-write rate when ``genai-prices`` has them; a config override has one input rate
for all input tokens. Amounts are rounded half up to the micro-dollar.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sluice.budgets.unit_prices import UnitPriceOverride, unit_micros
from sluice.clock import Clock, SystemClock
from sluice.types import Usage

if TYPE_CHECKING:
    from genai_prices.types import PriceCalculation

log = logging.getLogger("sluice.budgets")

PROBE = 1_000_000
"""Tokens per probe: the cost of a million tokens in USD is the rate in micro-USD/token."""
_CACHE_CAP = 4096
_SCALE_DIGITS = 12
_ONE: int = 10**_SCALE_DIGITS
_HALF = _ONE // 2

Source = Literal["override", "genai-prices", "unpriced"]


class PriceOverride(UnitPriceOverride, Protocol):
    """A model's prices from the config (``sluice.config.model.Prices``)."""

    @property
    def input_usd_per_mtok(self) -> float: ...

    @property
    def output_usd_per_mtok(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Cost:
    micros: int
    source: Source
    """``override`` (config prices), ``genai-prices``, or ``unpriced`` (counted as 0)."""

    @property
    def priced(self) -> bool:
        return self.source != "unpriced"


@dataclass(frozen=True, slots=True)
class Rates:
    """Micro-dollars per token (numerically, USD per million tokens)."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    _scaled: tuple[int, int, int, int] | None = field(
        init=False, default=None, repr=False, compare=False
    )
    """The rates in 10^-12 micro-dollars per token when that is exact: the same result in
    integer arithmetic, several times faster than ``Decimal`` (priced on every request)."""

    def __post_init__(self) -> None:
        rates = (self.input, self.cache_read, self.cache_write, self.output)
        scaled = [rate.scaleb(_SCALE_DIGITS) for rate in rates]
        if all(s >= 0 and s == s.to_integral_value() for s in scaled):
            object.__setattr__(self, "_scaled", tuple(int(s) for s in scaled))

    def micros(self, split: tuple[int, int, int, int]) -> int:
        uncached, cached, written, output = split
        ints = self._scaled
        if ints is not None and min(split) >= 0:
            exact = uncached * ints[0] + cached * ints[1] + written * ints[2] + output * ints[3]
            return (exact + _HALF) // _ONE  # half up, as below (both are non-negative)
        total = (
            uncached * self.input
            + cached * self.cache_read
            + written * self.cache_write
            + output * self.output
        )
        return int(total.to_integral_value(ROUND_HALF_UP))


def _split(usage: Usage) -> tuple[int, int, int, int]:
    """(uncached input, cache reads, cache writes, output); cached counts are part of the
    prompt and clamped to it."""
    prompt = max(0, usage.prompt_tokens)
    cached = min(max(0, usage.cached_tokens), prompt)
    written = min(max(0, usage.cache_write_tokens), prompt - cached)
    return prompt - cached - written, cached, written, max(0, usage.completion_tokens)


@functools.lru_cache(maxsize=256)
def _override_rates(input_usd_per_mtok: float, output_usd_per_mtok: float) -> Rates:
    rate_in = Decimal(str(input_usd_per_mtok))
    return Rates(rate_in, rate_in, rate_in, Decimal(str(output_usd_per_mtok)))


_UNPRICED = "unpriced"
_PER_CALL = "per-call"
"""The model's price is not linear in tokens (tiers, per-request fees, time-of-day prices):
ask ``genai-prices`` for every request."""


class Pricer:
    """Prices requests for the budgets. Safe to share; it caches each model's rates.

    ``provider`` is the provider's type or ``genai-prices`` id (``openai``, ``azure``,
    ``anthropic``, ``google``/``gemini``/``vertex``, ``aws``/``bedrock``, ...; the table
    knows the aliases); ``model`` is the upstream model name. The first lookup of a model
    loads the price table (about half a second); call :meth:`preload` at start-up to keep
    that off the request path.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._rates: dict[tuple[str, str], Rates | str] = {}

    def cost(
        self,
        usage: Usage,
        *,
        provider: str,
        model: str,
        prices: PriceOverride | None = None,
    ) -> Cost:
        """The cost of a finished request's usage (its tokens, plus its billed units when it
        is a media request: :mod:`sluice.budgets.unit_prices`)."""
        if usage.unit_kind is not None:
            tokens = self._token_cost(usage, provider=provider, model=model, prices=prices)
            units = unit_micros(usage, provider=provider, model=model, prices=prices)
            return Cost(tokens.micros + units, tokens.source)
        return self._token_cost(usage, provider=provider, model=model, prices=prices)

    def _token_cost(
        self,
        usage: Usage,
        *,
        provider: str,
        model: str,
        prices: PriceOverride | None,
    ) -> Cost:
        if prices is not None:
            fixed = _override_rates(prices.input_usd_per_mtok, prices.output_usd_per_mtok)
            return Cost(fixed.micros(_split(usage)), "override")
        rates = self._lookup(provider, model)
        if isinstance(rates, Rates):
            return Cost(rates.micros(_split(usage)), "genai-prices")
        if rates == _UNPRICED:
            return Cost(0, "unpriced")
        return self._calc(usage, provider=provider, model=model)

    def estimate(
        self,
        *,
        prompt_tokens: int,
        max_tokens: int,
        provider: str,
        model: str,
        prices: PriceOverride | None = None,
    ) -> Cost:
        """What to reserve before the call: the prompt estimate at the uncached input rate
        plus ``max_tokens`` at the output rate (an upper bound unless the prompt estimate
        is low). ``max_tokens`` is the output of every choice the provider generates
        (``pipeline.bounds.output_reserve``)."""
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=max_tokens)
        return self.cost(usage, provider=provider, model=model, prices=prices)

    def preload(self, models: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Resolve the rates of these ``(provider type, upstream model)`` pairs now; the
        pairs without a known price (their requests cost 0 unless the config prices them),
        for the caller to report in the config's own names."""
        return [pair for pair in models if self._lookup(*pair) == _UNPRICED]

    def _lookup(self, provider: str, model: str) -> Rates | str:
        key = (provider, model)
        found = self._rates.get(key)
        if found is None:
            if len(self._rates) >= _CACHE_CAP:
                self._rates.clear()
            found = self._rates[key] = self._resolve(provider, model)
        return found

    def _when(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def _probe(self, provider: str, model: str, **tokens: int) -> PriceCalculation:
        import genai_prices

        return genai_prices.calc_price(
            genai_prices.Usage(**tokens),
            model,
            provider_id=provider,
            genai_request_timestamp=self._when(),
        )

    def _resolve(self, provider: str, model: str) -> Rates | str:
        from genai_prices.types import ModelPrice, TieredPrices

        try:
            calc = self._probe(provider, model, input_tokens=PROBE)
        except (LookupError, ValueError):
            # Reported once per configured model at start (lifespan); a wildcard's model
            # is only known when a request names it.
            log.debug("no price for %r (provider type %r)", model, provider)
            return _UNPRICED
        price: Any = calc.model_price
        linear = (
            isinstance(calc.model.prices, ModelPrice)
            and not any(isinstance(v, TieredPrices) for v in vars(price).values())
            and getattr(price, "requests_kcount", None) is None
        )
        if not linear:
            return _PER_CALL
        return Rates(
            input=calc.total_price,
            cache_read=self._probe(
                provider, model, input_tokens=PROBE, cache_read_tokens=PROBE
            ).total_price,
            cache_write=self._probe(
                provider, model, input_tokens=PROBE, cache_write_tokens=PROBE
            ).total_price,
            output=self._probe(provider, model, output_tokens=PROBE).total_price,
        )

    def _calc(self, usage: Usage, *, provider: str, model: str) -> Cost:
        uncached, cached, written, output = _split(usage)
        try:
            calc = self._probe(
                provider,
                model,
                input_tokens=uncached + cached + written,
                cache_read_tokens=cached,
                cache_write_tokens=written,
                output_tokens=output,
            )
        except (LookupError, ValueError):
            log.warning("genai-prices could not price %r of %r", model, provider, exc_info=True)
            return Cost(0, "unpriced")
        micros = calc.total_price * 1_000_000
        return Cost(int(micros.to_integral_value(ROUND_HALF_UP)), "genai-prices")


@functools.lru_cache(maxsize=_CACHE_CAP)
def known_context_window(provider: str, model: str) -> int | None:
    """The model's context window in tokens from ``genai-prices``' bundled table (offline),
    or ``None`` when the table does not know the model or its window. Loads the table on
    first use (about half a second)."""
    import genai_prices

    try:
        calc = genai_prices.calc_price(genai_prices.Usage(), model, provider_id=provider)
    except (LookupError, ValueError):
        return None
    window = calc.model.context_window
    return window if isinstance(window, int) and window > 0 else None
