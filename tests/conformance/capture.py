"""Record a real client's requests: ``python -m tests.conformance.capture``.

Starts ``sluice mock-upstream`` (or uses ``--upstream``), puts a recording proxy in front of
it on loopback, runs the client command with ``CAPTURE_BASE_URL`` (the proxy's root, no
``/v1``) in its environment and ``{base}`` in its arguments replaced by the same URL, and
writes every request the client made, in order, to one capture file: method, path, the
headers that shape the request (never credentials) and the JSON body. The proxy forwards
each request to the upstream and streams the answer back, so the client runs its real loop
(tool calls, subagents) against the mock model.

Example (see ``tests/conformance/README.md`` for each client)::

    python -m tests.conformance.capture --client claude-code --case default \\
        -- sh -c 'ANTHROPIC_BASE_URL=$CAPTURE_BASE_URL claude -p "hi"'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

CAPTURES = Path(__file__).parent / "captures"

KEPT_HEADERS = (
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "openai-beta",
    "user-agent",
    "originator",
    "x-stainless-helper-method",
)
"""Request headers worth replaying: they select API versions, betas and streaming, or say
which client sent the request. Credentials and per-session ids are never kept."""

_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}


def recorded(method: str, path: str, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """One request as a capture stores it; a body that is not JSON is kept as text."""
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", errors="replace")
    kept = {k: headers[k] for k in KEPT_HEADERS if k in headers}
    return {"method": method, "path": path, "headers": kept, "body": body}


def proxy_app(
    upstream: str,
    seen: list[dict[str, Any]],
    enough: asyncio.Event,
    max_requests: int,
    *,
    to_mock: bool = True,
) -> web.Application:
    """Record, then forward to ``upstream`` and stream its answer back; after
    ``max_requests`` requests, set ``enough`` and refuse the rest. ``to_mock``: the upstream
    is the mock (add the credential header it wants in each format); else it is a gateway,
    sent the client's own."""
    session: dict[str, aiohttp.ClientSession] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if len(seen) >= max_requests:
            enough.set()
            return web.json_response({"error": "capture: enough requests"}, status=503)
        headers = {k.lower(): v for k, v in request.headers.items()}
        seen.append(recorded(request.method, request.path_qs, headers, raw))
        out_headers = {k: v for k, v in headers.items() if k not in _HOP and k != "host"}
        out_headers["accept-encoding"] = "identity"
        # The mock upstream wants a credential in each format's own header; clients send
        # one or the other (the Anthropic SDK sends a Bearer token to a custom base URL).
        if to_mock:
            out_headers.setdefault("authorization", "Bearer sk-capture")
            out_headers.setdefault("x-api-key", "sk-capture")
        if "s" not in session:
            session["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        async with session["s"].request(
            request.method, upstream + request.path_qs, data=raw, headers=out_headers
        ) as up:
            resp = web.StreamResponse(status=up.status)
            for key, value in up.headers.items():
                if key.lower() not in _HOP:
                    resp.headers[key] = value
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    async def close(_: web.Application) -> None:
        if "s" in session:
            await session["s"].close()

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_cleanup.append(close)
    return app


@dataclass
class Proxy:
    base_url: str
    """The proxy's root (no ``/v1``)."""
    seen: list[dict[str, Any]]
    """The requests so far, as :func:`recorded` stores them."""
    enough: asyncio.Event
    """Set when a request past ``max_requests`` came (and was refused)."""


@contextlib.asynccontextmanager
async def recording_proxy(
    upstream: str, *, max_requests: int = 1000, to_mock: bool = True
) -> AsyncIterator[Proxy]:
    """A recording proxy on a free loopback port in front of ``upstream``."""
    proxy = Proxy("", [], asyncio.Event())
    app = proxy_app(upstream.rstrip("/"), proxy.seen, proxy.enough, max_requests, to_mock=to_mock)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        proxy.base_url = f"http://127.0.0.1:{port}"
        yield proxy
    finally:
        await runner.cleanup()


async def run_bounded(
    args: list[str], *, env: dict[str, str], cwd: Path, timeout_s: float, stop: asyncio.Event
) -> tuple[int, bytes]:
    """Run ``args`` (no stdin) until it exits, ``timeout_s`` passes or ``stop`` is set (then
    it is killed: exit code ``-9``); returns the exit code and its output (stdout and
    stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    waiter = asyncio.ensure_future(proc.communicate())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, timeout=timeout_s, return_when="FIRST_COMPLETED")
    stopper.cancel()
    stopped = not waiter.done()
    if stopped:
        proc.kill()
    out, _ = await waiter
    code = proc.returncode if proc.returncode is not None and not stopped else -9
    return code, out


async def run_client(
    command: list[str], *, upstream: str, timeout_s: float, cwd: Path, max_requests: int
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``command`` against a recording proxy in front of ``upstream``; returns its exit
    code (``-9``: stopped at the time limit or after ``max_requests``) and its requests."""
    async with recording_proxy(upstream, max_requests=max_requests) as proxy:
        base = proxy.base_url
        env = {**os.environ, "CAPTURE_BASE_URL": base}
        args = [a.replace("{base}", base) for a in command]
        code, out = await run_bounded(
            args, env=env, cwd=cwd, timeout_s=timeout_s, stop=proxy.enough
        )
    sys.stdout.buffer.write(out)
    return code, proxy.seen


def start_mock() -> tuple[subprocess.Popen[bytes], str]:
    from tests.e2e.support import free_port, start_mock_upstream  # the tests' own helper

    del free_port
    proc, port = start_mock_upstream(Path(tempfile.mkdtemp(prefix="capture-mock-")))
    return proc.popen, f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", required=True, help="client name, e.g. claude-code")
    parser.add_argument("--case", required=True, help="what the run does, e.g. default")
    parser.add_argument("--version", default="", help="the client's version, recorded")
    parser.add_argument("--upstream", help="forward here instead of a fresh mock upstream")
    parser.add_argument("--timeout-s", type=float, default=180.0)
    parser.add_argument(
        "--max-requests",
        type=int,
        default=50,
        help="stop the client after this many requests (the mock model calls the first tool "
        "of every turn, so agents that spawn agents never finish)",
    )
    parser.add_argument("--out", type=Path, help="default: captures/<client>-<case>.json")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        parser.error("give the client command after --")
    mock = None
    upstream = ns.upstream
    if upstream is None:
        mock, upstream = start_mock()
    try:
        with tempfile.TemporaryDirectory(prefix="capture-cwd-") as cwd:
            code, seen = asyncio.run(
                run_client(
                    command,
                    upstream=upstream,
                    timeout_s=ns.timeout_s,
                    cwd=Path(cwd),
                    max_requests=ns.max_requests,
                )
            )
    finally:
        if mock is not None:
            mock.terminate()
            mock.wait(timeout=10)
    out = ns.out or CAPTURES / f"{ns.client}-{ns.case}.json"
    capture = {
        "client": ns.client,
        "case": ns.case,
        "client_version": ns.version,
        "exit_code": code,
        "requests": seen,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(capture, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(seen)} requests, client exit {code} -> {out}", file=sys.stderr)
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
