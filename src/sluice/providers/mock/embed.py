"""The mock's embeddings: deterministic unit vectors derived from each input's hash, or
(``bow=1``) from its words, so that texts sharing most words get near vectors (what a
semantic cache needs to be tested without a real model)."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

from sluice.providers.mock import caps
from sluice.providers.mock.script import MockScript, compact_json


def embeddings(script: MockScript, body: Mapping[str, Any]) -> dict[str, Any]:
    """Deterministic unit vectors derived from each input's hash."""
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    caps.embedding_inputs(inputs, script.dim)
    data = []
    tokens = 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else compact_json(item)
        tokens += max(1, len(text) // 4) if isinstance(item, str) else len(item or [])
        vector = _words(text, script.dim) if script.bow else _vector(text, script.dim)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    prompt = script.prompt_tokens if script.prompt_tokens is not None else tokens
    out: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model", script.name)}
    if script.usage:
        out["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
    return out


def _vector(text: str, dim: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    values: list[float] = []
    block = 0
    while len(values) < dim:
        digest = hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        values.extend(v / 2**31 - 1.0 for v in struct.unpack(">8I", digest))
        block += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


_WORD = re.compile(r"\w+")


def _words(text: str, dim: int) -> list[float]:
    """Hashed bag of words: each lower-cased word adds +1 or -1 at a position its digest
    picks; unit length (a text without words maps to the first axis)."""
    values = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "big") % dim
        values[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in values))
    if norm == 0.0:
        return [1.0] + [0.0] * (dim - 1)
    return [round(v / norm, 6) for v in values]
