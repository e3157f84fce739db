"""What a media request's billed units cost, in integer micro-dollars.

Speech is billed by characters of input, transcription by seconds of audio, image generation
by image (and size), rerank by search unit. A model's ``prices`` in the config win for the
unit they set; otherwise ``genai-prices``' bundled table gives the rate when it has one
(audio hours, millions of input characters). It has no image or search prices: those come
from the config only, and an unpriced unit costs 0.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from sluice.types import UnitKind, Usage

log = logging.getLogger("sluice.budgets")

_SECONDS_PER_HOUR = 3600


class UnitPriceOverride(Protocol):
    """A model's per-unit prices from the config (``sluice.config.model.Prices``)."""

    @property
    def micros_per_audio_second(self) -> int | None: ...

    @property
    def micros_per_character(self) -> int | None: ...

    @property
    def micros_per_image(self) -> int | None: ...

    @property
    def micros_per_image_by_size(self) -> Mapping[str, int]: ...

    @property
    def micros_per_search(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class TableRates:
    """Micro-dollars per unit from ``genai-prices`` (``None``: the table has no rate)."""

    audio_second: Decimal | None = None
    character: Decimal | None = None


@functools.lru_cache(maxsize=512)
def table_rates(provider: str, model: str) -> TableRates:
    """The unit rates ``genai-prices`` knows for the model (offline lookup, cached)."""
    import genai_prices

    try:
        calc = genai_prices.calc_price(genai_prices.Usage(), model, provider_id=provider)
    except (LookupError, ValueError):
        return TableRates()
    price = calc.model_price
    hours = getattr(price, "input_audio_hours", None) or getattr(price, "audio_hours", None)
    mchars = getattr(price, "input_mchars", None)
    return TableRates(
        audio_second=None
        if not isinstance(hours, Decimal)
        else hours * 1_000_000 / _SECONDS_PER_HOUR,
        character=None if not isinstance(mchars, Decimal) else mchars,
    )


def _override_rate(usage: Usage, prices: UnitPriceOverride) -> int | None:
    kind = usage.unit_kind
    if kind == UnitKind.AUDIO_SECONDS:
        return prices.micros_per_audio_second
    if kind == UnitKind.CHARACTERS:
        return prices.micros_per_character
    if kind == UnitKind.IMAGES:
        by_size = prices.micros_per_image_by_size
        variant = usage.unit_variant
        if variant and by_size:
            if variant in by_size:
                return by_size[variant]
            size = variant.split("/", 1)[0]
            if size in by_size:
                return by_size[size]
        return prices.micros_per_image
    if kind == UnitKind.SEARCHES:
        return prices.micros_per_search
    return None


def unit_micros(
    usage: Usage, *, provider: str, model: str, prices: UnitPriceOverride | None
) -> int:
    """Micro-dollars for ``usage``'s billed units (0 when it has none or none is priced),
    rounded half up."""
    if usage.unit_kind is None or usage.units <= 0:
        return 0
    rate: Decimal | int | None = None
    if prices is not None:
        rate = _override_rate(usage, prices)
    if rate is None:
        table = table_rates(provider, model)
        kind = usage.unit_kind
        rate = (
            table.audio_second
            if kind == UnitKind.AUDIO_SECONDS
            else table.character
            if kind == UnitKind.CHARACTERS
            else None
        )
    if rate is None:
        return 0
    total = Decimal(str(usage.units)) * rate
    return int(total.to_integral_value(ROUND_HALF_UP))
