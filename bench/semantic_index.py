"""Vector search for the semantic cache: numpy brute force (what the cache uses), usearch and
faiss-cpu, measured on the same data (docs/caching-semantic.md has the figures and the
choice). usearch and faiss-cpu are not dependencies of the gateway: install them to include
them (a library that is not installed is skipped).

    python bench/semantic_index.py [--sizes 10000,100000] [--dim 384] [--queries 1000]

Each (library, size) runs in a child process, so its memory is its own: the figure is the
growth of the child's RSS while the index is built. Data: unit vectors drawn around
1,000 random centres (embeddings of real prompts cluster; uniform random vectors are a
worst case for graph indexes). Times are on one thread (``OMP_NUM_THREADS=1``).
Reported: build (all entries at once, as a partition is loaded from the database), one-by-one
additions (as the cache stores answers), single-query latency (k=8) and recall@1 against
the exact answer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

K = 8
ONE_BY_ONE = 1000


def data(n: int, dim: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    picks = rng.integers(0, 1000, n + queries)
    points = centres[picks] + 0.35 * rng.standard_normal((n + queries, dim)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points[:n], points[n:]


def rss_mib() -> float:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class Numpy:
    def __init__(self, dim: int) -> None:
        self.m = np.empty((0, dim), np.float32)
        self.n = 0

    def build(self, xs: np.ndarray) -> None:
        self.m = xs.copy()
        self.n = len(xs)

    def add(self, x: np.ndarray) -> None:
        if self.n == len(self.m):  # grow by half, as a list does
            grown = np.empty((max(16, self.n * 3 // 2), self.m.shape[1]), np.float32)
            grown[: self.n] = self.m[: self.n]
            self.m = grown
        self.m[self.n] = x
        self.n += 1

    def search(self, q: np.ndarray) -> list[int]:
        scores = self.m[: self.n] @ q
        top = np.argpartition(-scores, K)[:K]
        return [int(i) for i in top[np.argsort(-scores[top])]]


class SluicePartition:
    """The cache's own partition (``sluice.cache.semantic.vectors``): the numpy scan plus
    string ids and the expiry mask."""

    def __init__(self, dim: int) -> None:
        from sluice.cache.semantic.vectors import Partition

        self.part = Partition(dim)
        self.n = 0

    def build(self, xs: np.ndarray) -> None:
        n = len(xs)
        self.part.add_many([str(i) for i in range(n)], xs, [0.0] * n, [1e12] * n)
        self.n = len(xs)

    def add(self, x: np.ndarray) -> None:
        self.part.add(str(self.n), x, created_at=0.0, expires_at=1e12)
        self.n += 1

    def search(self, q: np.ndarray) -> list[int]:
        return [int(entry_id) for entry_id, _ in self.part.search(q, now=1.0)]


class Usearch:
    def __init__(self, dim: int) -> None:
        from usearch.index import Index

        self.index = Index(ndim=dim, metric="ip", dtype="f32")
        self.n = 0

    def build(self, xs: np.ndarray) -> None:
        self.index.add(np.arange(len(xs), dtype=np.uint64), xs, threads=1)
        self.n = len(xs)

    def add(self, x: np.ndarray) -> None:
        self.index.add(self.n, x)
        self.n += 1

    def search(self, q: np.ndarray) -> list[int]:
        return [int(k) for k in self.index.search(q, K).keys]


class UsearchF16(Usearch):
    def __init__(self, dim: int) -> None:
        from usearch.index import Index

        self.index = Index(ndim=dim, metric="ip", dtype="f16")
        self.n = 0


class FaissHnsw:
    def __init__(self, dim: int) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)

    def build(self, xs: np.ndarray) -> None:
        self.index.add(xs)

    def add(self, x: np.ndarray) -> None:
        self.index.add(x[None, :])

    def search(self, q: np.ndarray) -> list[int]:
        _, ids = self.index.search(q[None, :], K)
        return [int(i) for i in ids[0]]


class FaissFlat(FaissHnsw):
    def __init__(self, dim: int) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.IndexFlatIP(dim)


LIBRARIES: dict[str, Callable[[int], Any]] = {
    "numpy brute force": Numpy,
    "sluice Partition (numpy scan)": SluicePartition,
    "usearch HNSW": Usearch,
    "usearch HNSW f16": UsearchF16,
    "faiss HNSWFlat": FaissHnsw,
    "faiss FlatIP (brute force)": FaissFlat,
}


def one(name: str, n: int, dim: int, queries: int) -> dict[str, Any]:
    xs, qs = data(n, dim, queries)
    exact = [int(np.argmax(xs @ q)) for q in qs]
    before = rss_mib()
    index = LIBRARIES[name](dim)
    t0 = time.perf_counter()
    index.build(xs[: n - ONE_BY_ONE])
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for x in xs[n - ONE_BY_ONE :]:
        index.add(x)
    add_us = (time.perf_counter() - t0) / ONE_BY_ONE * 1e6
    memory = rss_mib() - before
    times, hits = [], 0
    for q, want in zip(qs, exact, strict=True):
        t0 = time.perf_counter()
        got = index.search(q)
        times.append(time.perf_counter() - t0)
        hits += int(got[:1] == [want])
    lat = np.array(times) * 1e6
    return {
        "library": name,
        "entries": n,
        "build_s": round(build_s, 3),
        "add_us": round(add_us, 1),
        "query_us_mean": round(float(lat.mean()), 1),
        "query_us_p99": round(float(np.percentile(lat, 99)), 1),
        "recall_at_1": round(hits / len(qs), 3),
        "memory_mib": round(memory, 1),
        "raw_mib": round(n * dim * 4 / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, n = args.child.rsplit("|", 1)
        print(json.dumps(one(name, int(n), args.dim, args.queries)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for name in LIBRARIES:
            cmd = [sys.executable, __file__, "--child", f"{name}|{n}", "--dim", str(args.dim)]
            cmd += ["--queries", str(args.queries)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                print(f"{name} at {n}: skipped ({done.stderr.strip().splitlines()[-1]})")
                continue
            rows.append(json.loads(done.stdout))
    head = "| library | entries | build s | add µs | query µs mean | p99 | recall@1 | RSS MiB |"
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['library']} | {r['entries']:,} | {r['build_s']} | {r['add_us']} | "
            f"{r['query_us_mean']} | {r['query_us_p99']} | {r['recall_at_1']} | "
            f"{r['memory_mib']} (raw {r['raw_mib']}) |"
        )


if __name__ == "__main__":
    main()
