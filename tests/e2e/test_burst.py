"""Usage exactness under a concurrent burst: one row per authenticated request, whatever
happened to it, all written by the shutdown flush.

The burst runs against its own gateway whose usage writer never flushes on its own
(interval one hour), so every row in its database comes from the SIGTERM drain.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import Gateway, query, sse_payloads, start_gateway

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "burst"}]
BODY_LIMIT = 65536


@dataclass
class Outcome:
    kind: str
    index: int
    status: int | None
    """What the client saw; ``None`` when it gave up before any answer."""
    request_id: str | None
    user: str
    done: bool = False
    """A stream ended with ``[DONE]``."""


@dataclass(frozen=True)
class Kind:
    count: int
    row_status: int | None
    """The status the usage row must carry; ``None``: no row (unauthenticated)."""


KINDS: dict[str, Kind] = {
    "ok": Kind(40, 200),
    "ok_stream": Kind(30, 200),
    "ok_local": Kind(10, 200),
    "ok_embed": Kind(10, 200),
    "upstream_429": Kind(15, 429),
    "upstream_500": Kind(15, 502),
    "bad_input": Kind(15, 400),
    "unknown_model": Kind(15, 404),
    "too_large": Kind(5, 413),
    "cut_stream": Kind(10, 502),
    "disconnect": Kind(15, 499),
    "disconnect_stream": Kind(10, 499),
    "unauthenticated": Kind(10, None),
}
TOTAL = sum(k.count for k in KINDS.values())
AUTHENTICATED = sum(k.count for k in KINDS.values() if k.row_status is not None)


@pytest.fixture
def burst_gateway(
    e2e_dir: Path, mock_port: int, down_port: int, echo_port: int
) -> Iterator[Gateway]:
    gw = start_gateway(
        e2e_dir / "burst",
        mock_port,
        down_port,
        echo_port,
        SLUICE_MAX_BODY_BYTES=str(BODY_LIMIT),
        SLUICE_USAGE_FLUSH_INTERVAL_S="3600",
        SLUICE_USAGE_BATCH_SIZE="100000",
    )
    try:
        yield gw
    finally:
        gw.proc.kill()


def _rid(resp: httpx.Response) -> str | None:
    return resp.headers.get("x-request-id")


async def _post(
    client: httpx.AsyncClient,
    kind: str,
    i: int,
    body: dict[str, object],
    path: str = "/v1/chat/completions",
    **kw: object,
) -> Outcome:
    user = str(body.get("user", f"{kind}-{i}"))
    resp = await client.post(path, json=body, **kw)  # type: ignore[arg-type]
    return Outcome(kind, i, resp.status_code, _rid(resp), user)


async def _stream(
    client: httpx.AsyncClient,
    kind: str,
    i: int,
    body: dict[str, object],
    *,
    events: int | None = None,
) -> Outcome:
    """Stream; with ``events`` read only that many data events and hang up."""
    user = str(body["user"])
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        out = Outcome(kind, i, resp.status_code, _rid(resp), user)
        if events is not None:
            seen = 0
            async for line in resp.aiter_lines():
                seen += line.startswith("data: ")
                if seen >= events:
                    return out  # leaving the block unread closes the connection
            return out
        raw = "".join([part async for part in resp.aiter_text()])
    payloads = sse_payloads(raw)
    out.done = bool(payloads) and payloads[-1] == "[DONE]"
    return out


def _chat(model: str, user: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": MESSAGES, "user": user, **extra}


def job(kind: str, i: int, client: httpx.AsyncClient, bad: httpx.AsyncClient) -> Awaitable[Outcome]:
    """The request for the ``i``-th member of ``kind``; ``user`` tags its usage row."""
    u = f"{kind}-{i}"
    match kind:
        case "ok":
            return _post(client, kind, i, _chat("m-chat", u))
        case "ok_stream":
            opts = {"stream_options": {"include_usage": True}} if i % 2 else {}
            return _stream(client, kind, i, _chat("m-chat", u, stream=True, **opts))
        case "ok_local":
            return _post(client, kind, i, _chat("m-local", u))
        case "ok_embed":
            body = {"model": "m-embed", "input": u, "user": u}
            return _post(client, kind, i, body, path="/v1/embeddings")
        case "upstream_429":
            return _post(client, kind, i, _chat("m-429", u))
        case "upstream_500":
            return _post(client, kind, i, _chat("m-500", u))
        case "bad_input":
            return _post(client, kind, i, {"model": "m-chat", "user": u})
        case "unknown_model":
            return _post(client, kind, i, _chat("m-nope", u))
        case "too_large":
            big = [{"role": "user", "content": "z" * (BODY_LIMIT + 10_000)}]
            return _post(client, kind, i, {"model": "m-chat", "messages": big, "user": u})
        case "cut_stream":
            return _stream(client, kind, i, _chat("m-cut-paced", u, stream=True))
        case "disconnect":
            return _give_up(client, i, _chat("m-slow", u))
        case "disconnect_stream":
            body = _chat("m-slow-stream", u, stream=True)
            return _stream(client, kind, i, body, events=1)
        case "unauthenticated":
            return _post(bad, kind, i, _chat("m-chat", u))
    raise AssertionError(kind)


async def _give_up(client: httpx.AsyncClient, i: int, body: dict[str, object]) -> Outcome:
    """The upstream answers after 3 s; the client stops waiting after 0.5 s."""
    try:
        resp = await client.post(
            "/v1/chat/completions", json=body, timeout=httpx.Timeout(30.0, read=0.5)
        )
    except httpx.ReadTimeout:
        return Outcome("disconnect", i, None, None, str(body["user"]))
    return Outcome("disconnect", i, resp.status_code, _rid(resp), str(body["user"]))


async def test_one_usage_row_per_request_under_burst(burst_gateway: Gateway) -> None:
    gw = burst_gateway
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=50)
    async with (
        httpx.AsyncClient(
            base_url=gw.base_url,
            headers={"Authorization": f"Bearer {gw.key}"},
            timeout=30.0,
            limits=limits,
        ) as client,
        httpx.AsyncClient(
            base_url=gw.base_url,
            headers={"Authorization": "Bearer sk-slc-zzzzzzzzzzzz-" + "q" * 40},
            timeout=30.0,
        ) as bad,
    ):
        jobs = [
            job(kind, i, client, bad) for kind, spec in KINDS.items() for i in range(spec.count)
        ]
        assert len(jobs) == TOTAL == 200
        outcomes = await asyncio.wait_for(asyncio.gather(*jobs), 60)

    # What the clients saw.
    by_kind: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, []).append(o)
    client_status = {
        "ok": 200, "ok_stream": 200, "ok_local": 200, "ok_embed": 200,
        "upstream_429": 429, "upstream_500": 502, "bad_input": 400, "unknown_model": 404,
        "too_large": 413, "cut_stream": 200, "disconnect_stream": 200, "unauthenticated": 401,
    }  # fmt: skip
    for kind, want in client_status.items():
        got = Counter(o.status for o in by_kind[kind])
        assert got == {want: KINDS[kind].count}, (kind, got)
    assert all(o.status is None for o in by_kind["disconnect"]), "m-slow answered within 0.5 s?"
    assert all(o.done for o in by_kind["ok_stream"])
    assert not any(o.done for o in by_kind["cut_stream"])

    # Nothing flushed yet: every row must come from the shutdown drain.
    assert query(gw.db_path, "SELECT count(*) AS n FROM usage_events")[0]["n"] == 0
    stop_gateway(gw)

    rows = query(gw.db_path, "SELECT * FROM usage_events")
    by_id = {r["request_id"]: r for r in rows}
    by_user: dict[str | None, list[dict[str, object]]] = {}
    for r in rows:
        by_user.setdefault(r["end_user"], []).append(r)

    assert len(rows) == AUTHENTICATED, Counter(r["status"] for r in rows)
    assert all(r["key_id"] == gw.key_id for r in rows)
    want_status: Counter[int] = Counter()
    for k in KINDS.values():
        if k.row_status is not None:
            want_status[k.row_status] += k.count
    assert Counter(r["status"] for r in rows) == want_status

    for o in outcomes:
        spec = KINDS[o.kind]
        if spec.row_status is None:
            assert o.request_id is not None
            assert o.request_id not in by_id, "unauthenticated requests are not billed"
            continue
        if o.request_id is not None:
            row = by_id.get(o.request_id)
            assert row is not None, f"no usage row for {o}"
        else:
            matches = by_user.get(o.user, [])
            assert len(matches) == 1, (o, matches)
            row = matches[0]
        assert row["status"] == spec.row_status, (o, row)
        if o.kind.startswith("ok"):
            assert row["error_kind"] is None, row
            assert row["end_user"] == o.user
            assert row["tokens_estimated"] == 0, row
            if o.kind != "ok_embed":
                assert row["completion_tokens"] == 64, row
        if o.kind in ("ok_stream", "cut_stream", "disconnect_stream"):
            assert row["streamed"] == 1, row
        if o.kind.startswith("disconnect"):
            assert row["error_kind"] == "client_disconnected", row
        if o.kind == "disconnect_stream":
            assert row["completion_tokens"] > 0, row
        if o.kind == "cut_stream":
            assert row["error_kind"] == "provider_stream_interrupted", row
    # Every row is accounted for by exactly one outcome.
    matched = {o.request_id for o in outcomes if o.request_id} | {
        r["request_id"] for o in by_kind["disconnect"] for r in by_user.get(o.user, [])
    }
    assert set(by_id) <= matched
