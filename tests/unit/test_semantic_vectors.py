"""A partition's in-memory vectors (usearch): nearest first, exact below a size and graph
search above it, removal, expiry and the oldest entries."""

from __future__ import annotations

import numpy as np
import pytest

from sluice.cache.semantic.vectors import EXACT_BELOW, Partition, pack, unpack


def unit_vectors(n: int, dim: int, seed: int = 7) -> np.ndarray:
    xs = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return xs / np.linalg.norm(xs, axis=1, keepdims=True)


@pytest.mark.parametrize("size", [50, EXACT_BELOW + 500])
def test_a_stored_vector_is_its_own_nearest(size: int) -> None:
    xs = unit_vectors(size, 32)
    part = Partition(32)
    assert part.add_many([(f"e{i}", x, float(i), 1e12) for i, x in enumerate(xs)]) == size
    assert len(part) == size
    for i in range(0, size, max(1, size // 40)):
        found = part.search(xs[i], now=0.0)
        assert found[0][0] == f"e{i}" and found[0][1] == pytest.approx(1.0, abs=1e-4)
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_remove_expiry_and_oldest() -> None:
    xs = unit_vectors(4, 8)
    part = Partition(8)
    assert part.add("a", xs[0], created_at=1.0, expires_at=100.0)
    assert not part.add("a", xs[1], created_at=1.0, expires_at=100.0)  # known id
    assert not part.add("z", np.zeros(4, np.float32), created_at=1.0, expires_at=100.0)
    part.add("b", xs[1], created_at=2.0, expires_at=50.0)
    part.add("c", xs[2], created_at=3.0, expires_at=100.0)
    assert part.search(xs[1], now=49.0)[0][0] == "b"
    assert "b" not in [i for i, _ in part.search(xs[1], now=50.0)]  # expired
    assert part.select(expired_at=50.0) == ["b"]
    assert sorted(part.select(before=3.0)) == ["a", "b"]
    assert part.oldest(2) == ["a", "b"]
    assert part.remove("a") and not part.remove("a")
    assert "a" not in part and len(part) == 2
    assert "a" not in [i for i, _ in part.search(xs[0], now=0.0)]
    assert part.search(np.ones(3, np.float32), now=0.0) == []  # another size: nothing


def test_vectors_round_trip_as_float32_bytes() -> None:
    data = pack((0.6, 0.8))
    assert len(data) == 8
    assert unpack(data).tolist() == pytest.approx([0.6, 0.8])
