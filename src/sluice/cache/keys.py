"""What makes two requests the same question: the normalised body, its digest (the exact
key), the parameters' digest and the prompt text (the semantic probe).

Normalised means: parsed (whitespace gone), keys sorted at every depth, ``stream`` kept only
when true, and the fields of :data:`IGNORED` removed: they say who asks or how to deliver,
not what the answer is. The public model the request resolved to replaces the body's
``model`` (two aliases of one model share entries), and the model's deployment generation
(:func:`generation`) is part of every key, so a config that changes a model's deployments
never finds the entries of the old ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

IGNORED = frozenset(
    {
        "model",  # replaced by the resolved public model
        "user",
        "stream_options",  # the usage chunk is added on replay when asked
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)
"""Top-level request fields left out of the key: they do not change the answer."""

PROMPT_FIELDS = frozenset({"messages", "prompt", "input", "system", "instructions"})
"""Fields that hold the prompt: the semantic probe's text, outside its parameter digest."""

KEY_VERSION = b"sluice-cache-1"


def normalised(body: Mapping[str, Any], *, drop: frozenset[str] = IGNORED) -> bytes:
    """The body's canonical bytes without the fields in ``drop``."""
    kept = {k: v for k, v in body.items() if k not in drop}
    if not kept.get("stream"):
        kept.pop("stream", None)
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)


def exact_key(*, scope: str, model: str, generation: str, endpoint: str, body: bytes) -> str:
    """The exact entry's key: a digest of who shares it, what model, which endpoint and the
    normalised body."""
    h = hashlib.blake2b(KEY_VERSION, digest_size=20)
    for part in (scope, model, generation, endpoint):
        h.update(b"\0" + part.encode())
    h.update(b"\0" + body)
    return h.hexdigest()


def params_digest(body: Mapping[str, Any], *, generation: str) -> str:
    """A digest of every answer-changing field but the prompt: semantic entries match only
    requests with the same one."""
    h = hashlib.blake2b(KEY_VERSION, digest_size=16)
    h.update(generation.encode() + b"\0")
    h.update(normalised(body, drop=IGNORED | PROMPT_FIELDS))
    return h.hexdigest()


def generation(deployments: Iterable[Mapping[str, Any]]) -> str:
    """A short digest of a model's deployments as configured."""
    raw = orjson.dumps(list(deployments), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


def _text(value: Any, out: list[str]) -> None:
    """Every text of a prompt value (a string, content parts, items), in order."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _text(item, out)
    elif isinstance(value, dict):
        role = value.get("role")
        if isinstance(role, str):
            out.append(role + ":")
        for field in ("text", "content", "input", "output", "arguments"):
            if field in value:
                _text(value[field], out)


def prompt_text(body: Mapping[str, Any]) -> str:
    """The prompt as one text (system, instructions and every message's text), what the
    semantic index embeds; empty when the request has none."""
    out: list[str] = []
    for field in ("instructions", "system", "messages", "prompt", "input"):
        if field in body:
            _text(body[field], out)
    return "\n".join(out)
