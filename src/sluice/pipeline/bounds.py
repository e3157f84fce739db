"""How much output a request may ask for, and how much it reserves.

A request bills its output once per choice: ``n`` choices on chat, ``max(n, best_of)``
completions per prompt on ``/v1/completions``. Limits and budgets reserve the requested
maximum for every one of them, so a provider billing ``n`` answers cannot overshoot a
budget ``n``-fold. The fields that set those multipliers are bounded per model (a 400
naming the field beyond the bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.errors import BadRequest
from sluice.routing.table import OutputBounds
from sluice.types import Endpoint, ProviderRequest

DEFAULT_OUTPUT_RESERVE = 4096
"""Output tokens reserved per choice (limits and budgets) when a request names no maximum."""
OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""Where each dialect names the maximum output: chat and completions (``max_tokens``,
``max_completion_tokens``), Messages (``max_tokens``), Responses (``max_output_tokens``)."""
CHOICE_FIELDS = ("n", "best_of")


def _int(body: Mapping[str, Any], field: str) -> int | None:
    value = body.get(field)
    return value if type(value) is int else None  # not bool, a subclass of int


def check(req: ProviderRequest, bounds: OutputBounds) -> None:
    """Raise :class:`BadRequest` naming the first field beyond the model's bounds. Runs on
    every request: a few dict lookups."""
    body = req.body
    limit = bounds.max_output_tokens
    for field in OUTPUT_FIELDS:
        value = body.get(field)
        if type(value) is int and value > limit:
            raise BadRequest(
                f"'{field}' must be at most {limit} for the model {req.model!r}", param=field
            )
    for field in CHOICE_FIELDS:
        value = body.get(field)
        if type(value) is int and value > bounds.max_n:
            raise BadRequest(
                f"'{field}' must be at most {bounds.max_n} for the model {req.model!r}",
                param=field,
            )


def requested_output(body: Mapping[str, Any]) -> int:
    """The maximum output of one choice: the largest output field given, else the default."""
    most = 0
    for field in OUTPUT_FIELDS:
        value = body.get(field)
        if type(value) is int and value > most:
            most = value
    return most or DEFAULT_OUTPUT_RESERVE


def _prompts(prompt: Any) -> int:
    """How many prompts a completions ``prompt`` holds (a token array is one prompt)."""
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return len(prompt)  # strings or token arrays
    return 1


def choices(req: ProviderRequest) -> int:
    """How many answers the provider generates (and bills) for the request."""
    body = req.body
    if req.endpoint is Endpoint.CHAT:
        return max(1, _int(body, "n") or 1)
    if req.endpoint is Endpoint.COMPLETIONS:
        per_prompt = max(1, _int(body, "n") or 1, _int(body, "best_of") or 1)
        return per_prompt * _prompts(body.get("prompt"))
    return 1


def output_reserve(req: ProviderRequest) -> int:
    """Output tokens to reserve: the per-choice maximum times the number of choices."""
    return requested_output(req.body) * choices(req)
