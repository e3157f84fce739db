"""Minimal OpenAI-compatible pass-through: the yardstick Sluice is compared with.

This is roughly the least work a Python gateway on a standard ASGI server can
do per request, so "Sluice RPS / minimal RPS" says how much of the achievable
throughput Sluice keeps. A raw ASGI callable (no framework) that

  * checks "Authorization: Bearer <key>" against an in-memory dict of keys,
  * parses the JSON body (orjson) to read "model" and maps it through a routing
    table to the upstream model name (the body is re-serialised only when the
    name changes),
  * forwards with one shared aiohttp ClientSession (keep-alive pool),
  * relays SSE responses chunk by chunk as they arrive (no buffering).

It does no usage logging, no database work, no retries and no metrics.

Run it (from bench/, with the bench venv) on uvicorn, one worker:

  uvicorn minimal_proxy:app --port 18100 --loop uvloop --http httptools --no-access-log

Environment:
  UPSTREAM_BASE   upstream base URL            (default http://127.0.0.1:18000/v1)
  UPSTREAM_KEY    API key sent upstream         (default sk-upstream)
  PROXY_KEYS      comma-separated client keys   (default sk-bench-1234)
  PROXY_MODELS    comma-separated alias=upstream_model pairs
                  (default gpt-4o-mini=gpt-4o-mini,text-embedding-3-small=text-embedding-3-small)

Health: GET /health, /health/live or /health/liveliness -> 200.
"""

from __future__ import annotations

import os

import aiohttp
import orjson

UPSTREAM_BASE = os.environ.get("UPSTREAM_BASE", "http://127.0.0.1:18000/v1").rstrip("/")
UPSTREAM_KEY = os.environ.get("UPSTREAM_KEY", "sk-upstream")
KEYS = {
    k.strip().encode(): {"key_alias": f"key-{i}"}
    for i, k in enumerate(os.environ.get("PROXY_KEYS", "sk-bench-1234").split(","))
    if k.strip()
}
MODELS = dict(
    pair.split("=", 1)
    for pair in os.environ.get(
        "PROXY_MODELS", "gpt-4o-mini=gpt-4o-mini,text-embedding-3-small=text-embedding-3-small"
    ).split(",")
    if "=" in pair
)

ROUTES = {
    "/v1/chat/completions": "/chat/completions",
    "/chat/completions": "/chat/completions",
    "/v1/embeddings": "/embeddings",
    "/embeddings": "/embeddings",
}
HEALTH_PATHS = frozenset(("/health", "/health/live", "/health/liveliness"))

_session: aiohttp.ClientSession | None = None
_UP_HEADERS = {"Authorization": f"Bearer {UPSTREAM_KEY}", "Content-Type": "application/json"}
_JSON_HDRS = [(b"content-type", b"application/json")]


def _err(status: int, message: str, etype: str) -> tuple[int, bytes]:
    return status, orjson.dumps(
        {"error": {"message": message, "type": etype, "param": None, "code": str(status)}}
    )


async def _send_json(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _JSON_HDRS + [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes:
    msg = await receive()
    body = msg.get("body", b"")
    if not msg.get("more_body"):
        return body
    parts = [body]
    while msg.get("more_body"):
        msg = await receive()
        parts.append(msg.get("body", b""))
    return b"".join(parts)


def _authorized(headers) -> bool:
    for name, value in headers:
        if name == b"authorization":
            return value[:7].lower() == b"bearer " and value[7:].strip() in KEYS
    return False


async def _lifespan(receive, send) -> None:
    global _session
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            _session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=None),
                timeout=aiohttp.ClientTimeout(total=600),
                skip_auto_headers=("User-Agent",),
            )
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    method = scope["method"]

    if method == "GET" and path in HEALTH_PATHS:
        await _send_json(send, 200, b'{"status":"ok"}')
        return
    if not _authorized(scope["headers"]):
        await _send_json(send, *_err(401, "invalid or missing API key", "authentication_error"))
        return
    if method == "GET" and path in ("/v1/models", "/models"):
        await _send_json(
            send,
            200,
            orjson.dumps(
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "proxy"}
                        for m in MODELS
                    ],
                }
            ),
        )
        return
    upstream_path = ROUTES.get(path)
    if method != "POST" or upstream_path is None:
        await _send_json(send, *_err(404, f"no route for {method} {path}", "invalid_request_error"))
        return

    body = await _read_body(receive)
    try:
        req = orjson.loads(body)
        alias = req["model"]
        upstream_model = MODELS[alias]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        await _send_json(
            send, *_err(400, "bad request body or unknown model", "invalid_request_error")
        )
        return
    if upstream_model != alias:
        req["model"] = upstream_model
        body = orjson.dumps(req)

    assert _session is not None
    try:
        async with _session.post(
            UPSTREAM_BASE + upstream_path, data=body, headers=_UP_HEADERS
        ) as resp:
            ctype = resp.headers.get("Content-Type", "application/json")
            if ctype.startswith("text/event-stream"):
                await send(
                    {
                        "type": "http.response.start",
                        "status": resp.status,
                        "headers": [
                            (b"content-type", ctype.encode()),
                            (b"cache-control", b"no-cache"),
                        ],
                    }
                )
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                data = await resp.read()
                await send(
                    {
                        "type": "http.response.start",
                        "status": resp.status,
                        "headers": [
                            (b"content-type", ctype.encode()),
                            (b"content-length", str(len(data)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": data})
    except aiohttp.ClientError as exc:
        await _send_json(send, *_err(502, f"upstream error: {exc!r}", "api_error"))
