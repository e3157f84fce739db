"""Live latency with and without a running batch (docs/batches.md, "Live latency while a
batch runs").

Starts ``sluice mock-upstream`` and ``sluice serve`` (SQLite, a temporary directory) on
127.0.0.1, then for each setting of ``batches.concurrency_under_load``:

1. live traffic alone: ``--clients`` concurrent clients send chat requests for
   ``--seconds``, latencies recorded;
2. the same while a batch of ``--lines`` chat lines runs (uploaded with the files API);

and prints the p50/p95/p99 of the live requests and the batch lines finished per second.
Both the live model and the batch model answer after ``--upstream-ms`` at the mock.

    python bench/batch_latency.py [--lines 10000] [--seconds 15] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {timeout_s} s")


CONFIG = """
providers:
  up: {{type: openai_compatible, base_url: "http://127.0.0.1:{mock}/v1", api_key: sk-up}}
models:
  - name: live
    deployments: [{{provider: up, model: "chat?latency_ms={ms}"}}]
  - name: bulk
    deployments: [{{provider: up, model: "chat?latency_ms={ms}"}}]
batches:
  concurrency: 32
  concurrency_per_batch: 32
  concurrency_under_load: {under_load}
  max_lines: {lines}
"""

CHAT = {"model": "live", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def batch_file(lines: int) -> bytes:
    body = {"model": "bulk", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}
    rows = (
        {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        for i in range(lines)
    )
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


async def live_traffic(base: str, key: str, *, clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    end = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as client:

        async def one() -> None:
            while time.monotonic() < end:
                start = time.perf_counter()
                resp = await client.post("/v1/chat/completions", json=CHAT)
                if resp.status_code == 200:
                    latencies.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(one() for _ in range(clients)))
    return latencies


def summary(latencies: list[float]) -> str:
    qs = statistics.quantiles(latencies, n=100)
    return f"n={len(latencies)} p50={qs[49]:.1f} p95={qs[94]:.1f} p99={qs[98]:.1f} ms"


async def run_once(args: argparse.Namespace, under_load: int, mock_port: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="sluice-batch-bench-"))
    master = "sk-master-" + secrets.token_hex(16)
    port = free_port()
    config = work / "sluice.yaml"
    config.write_text(
        CONFIG.format(mock=mock_port, ms=args.upstream_ms, under_load=under_load, lines=args.lines)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_DATA_DIR=str(work),
        SLUICE_DATABASE_URL=f"sqlite+aiosqlite:///{work}/sluice.db",
        SLUICE_MASTER_KEY=master,
        SLUICE_LOG_LEVEL="info",
    )
    log = (work / "serve.log").open("wb")
    serve = subprocess.Popen(
        [PYTHON, "-m", "sluice", "serve", "--port", str(port), "--config", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/health/ready", serve)
        await live_traffic(base, master, clients=args.clients, seconds=2)  # warm-up
        alone = await live_traffic(base, master, clients=args.clients, seconds=args.seconds)
        headers = {"Authorization": f"Bearer {master}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120.0) as client:
            up = await client.post(
                "/v1/files",
                files={"file": ("in.jsonl", batch_file(args.lines))},
                data={"purpose": "batch"},
            )
            up.raise_for_status()
            made = await client.post(
                "/v1/batches",
                json={
                    "input_file_id": up.json()["id"],
                    "endpoint": "/v1/chat/completions",
                    "completion_window": "24h",
                },
            )
            made.raise_for_status()
            batch_id = made.json()["id"]
            before = (await client.get(f"/v1/batches/{batch_id}")).json()["request_counts"]
            during = await live_traffic(base, master, clients=args.clients, seconds=args.seconds)
            after = (await client.get(f"/v1/batches/{batch_id}")).json()["request_counts"]
            await client.post(f"/v1/batches/{batch_id}/cancel")
        done = after["completed"] + after["failed"] - before["completed"] - before["failed"]
        print(f"concurrency_under_load={under_load}")
        print(f"  live alone:        {summary(alone)}")
        print(f"  live during batch: {summary(during)}")
        print(f"  batch lines done during the window: {done} ({done / args.seconds:.0f}/s)")
    finally:
        serve.terminate()
        started = time.monotonic()
        serve.wait(timeout=60)
        print(
            f"  gateway exited {serve.returncode} {time.monotonic() - started:.1f} s after SIGTERM"
        )
        log.close()
        shutil.rmtree(work, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--upstream-ms", type=int, default=20)
    parser.add_argument("--under-load", type=int, nargs="+", default=[4, 32])
    args = parser.parse_args()
    mock_port = free_port()
    mock = subprocess.Popen(
        [PYTHON, "-m", "sluice", "mock-upstream", "--port", str(mock_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{mock_port}/health", mock)
        for under_load in args.under_load:
            await run_once(args, under_load, mock_port)
    finally:
        mock.terminate()
        mock.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
