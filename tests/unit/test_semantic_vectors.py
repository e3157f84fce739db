"""A partition's in-memory vectors: nearest first (exact), removal (the last row takes the
freed place), expiry and the oldest entries."""

from __future__ import annotations

import numpy as np
import pytest

from sluice.cache.semantic.vectors import Partition, pack


def unit_vectors(n: int, dim: int, seed: int = 7) -> np.ndarray:
    xs = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return xs / np.linalg.norm(xs, axis=1, keepdims=True)


@pytest.mark.parametrize("size", [50, 5000])
def test_a_stored_vector_is_its_own_nearest(size: int) -> None:
    xs = unit_vectors(size, 32)
    part = Partition(32)
    ids = [f"e{i}" for i in range(size)]
    assert part.add_many(ids, xs, [float(i) for i in range(size)], [1e12] * size) == size
    assert part.add_many(["e0", "new", "new"], xs[:3], [0.0] * 3, [1e12] * 3) == 1
    assert part.remove("new")
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
    assert np.frombuffer(data, dtype="<f4").tolist() == pytest.approx([0.6, 0.8])


def test_removals_keep_every_remaining_row_findable() -> None:
    rng = np.random.default_rng(3)
    xs = unit_vectors(300, 16)
    part = Partition(16)
    kept: dict[str, np.ndarray] = {}
    for i, x in enumerate(xs):  # one by one: the matrix grows several times
        assert part.add(f"e{i}", x, created_at=float(i), expires_at=1e12)
        kept[f"e{i}"] = x
    for i in rng.permutation(300)[:200]:
        assert part.remove(f"e{i}")
        del kept[f"e{i}"]
    assert len(part) == len(kept) == 100
    for entry_id, x in kept.items():
        assert part.search(x, now=0.0)[0] == (entry_id, pytest.approx(1.0, abs=1e-5))
    fresh = unit_vectors(1, 16, seed=99)[0]
    part.add("new", fresh, created_at=1.0, expires_at=1e12)
    assert part.search(fresh, now=0.0)[0][0] == "new"
