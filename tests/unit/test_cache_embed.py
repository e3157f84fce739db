"""What the semantic cache's embedder reads from an embeddings answer: the first vector,
floats or base64, normalised; anything else is no vector (a miss), never an error."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from sluice.pipeline.cache_embed import MAX_DIMENSIONS, _vector


def answer(embedding: object) -> bytes:
    return orjson.dumps({"object": "list", "data": [{"embedding": embedding, "index": 0}]})


def test_floats_and_base64_are_read_and_normalised() -> None:
    assert _vector(answer([3.0, 4.0])) == pytest.approx((0.6, 0.8))
    packed = base64.b64encode(struct.pack("<2f", 0.0, 2.0)).decode()
    assert _vector(answer(packed)) == pytest.approx((0.0, 1.0))


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        orjson.dumps({"data": []}),
        answer(None),
        answer([]),
        answer([0.0, 0.0]),
        answer(["a", "b"]),
        answer([1.0] * (MAX_DIMENSIONS + 1)),
        answer("***not base64***"),
        answer([1e308, 1e308]),  # the norm overflows
    ],
)
def test_anything_else_is_no_vector(raw: bytes) -> None:
    assert _vector(raw) is None
