"""Response headers, the metadata object (raw and through the OpenAI SDK), ``/metrics``,
trace propagation upstream, and spans received by an OTLP collector stub on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp.web
import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.integration.conftest import MASTER, make_settings, running

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


class Stub:
    """An OpenAI-compatible upstream that records request headers, and an OTLP/HTTP
    collector (``POST /v1/traces``) that keeps what it receives."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.traces: list[bytes] = []

    async def chat(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        self.headers.append(dict(request.headers))
        body = await request.json()
        if body["model"] == "fail":
            return aiohttp.web.json_response({"error": {"message": "down"}}, status=500)
        if body.get("stream"):
            resp = aiohttp.web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            for piece in ("Hel", "lo"):
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"content": piece}}],
                }
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [],
                "usage": USAGE,
            }
            await resp.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            return resp
        return aiohttp.web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": USAGE,
            }
        )

    async def otlp(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.traces.append(await request.read())
        return aiohttp.web.Response(body=b"", content_type="application/x-protobuf")

    def spans(self) -> list[Any]:
        out = []
        for raw in self.traces:
            req = ExportTraceServiceRequest()
            req.ParseFromString(raw)
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    out.extend(ss.spans)
        return out


@asynccontextmanager
async def stub_server(port: int) -> AsyncIterator[Stub]:
    stub = Stub()
    app = aiohttp.web.Application()
    app.router.add_post("/v1/chat/completions", stub.chat)
    app.router.add_post("/v1/traces", stub.otlp)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield stub
    finally:
        await runner.cleanup()


def config(port: int) -> str:
    return f"""
providers:
  up: {{type: openai_compatible, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-up-123456}}
models:
  - name: echo
    deployments: [{{provider: up, model: m}}]
    prices: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
  - name: two
    strategy: priority
    deployments:
      - {{provider: up, model: fail, priority: 0, retries: 0}}
      - {{provider: up, model: m, priority: 1, retries: 0}}
"""


CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}
META_KEYS = {
    "provider",
    "deployment",
    "latency_ms",
    "upstream_ms",
    "cost_usd",
    "cache_hit",
    "request_id",
    "trace_id",
}


async def test_headers_and_metadata_on_a_json_answer(tmp_path: Path, unused_tcp_port: int) -> None:
    async with (
        stub_server(unused_tcp_port) as stub,
        running(make_settings(tmp_path), config(unused_tcp_port)) as (_, client),
    ):
        resp = await client.post(
            "/v1/chat/completions",
            json=CHAT,
            headers={"x-sluice-metadata": "true", "traceparent": TRACEPARENT},
        )
        plain = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 200
    h = resp.headers
    assert h["x-sluice-provider"] == "up" and h["x-sluice-deployment"] == "up/m"
    assert h["x-sluice-cost-usd"] == "0.000020"  # 10 x 1 + 5 x 2 micro-dollars
    assert int(h["x-sluice-upstream-ms"]) >= 0 and int(h["x-sluice-overhead-ms"]) >= 0
    assert h["x-sluice-cache"] == "none"
    assert h["x-sluice-trace-id"] == TRACE
    meta = resp.json()["sluice"]
    assert set(meta) == META_KEYS
    assert meta["cost_usd"] == pytest.approx(0.00002) and meta["cache_hit"] is False
    assert meta["request_id"] == h["x-request-id"] and meta["trace_id"] == TRACE
    assert meta["provider"] == "up" and meta["deployment"] == "up/m"
    assert resp.json()["choices"][0]["message"]["content"] == "ok"
    # Tracing is off: the caller's traceparent goes upstream unchanged; the key never does.
    assert stub.headers[0]["traceparent"] == TRACEPARENT
    assert MASTER not in json.dumps(stub.headers)
    # Without the opt-in: no metadata, a fresh trace id, still a traceparent upstream.
    assert "sluice" not in plain.json()
    fresh = plain.headers["x-sluice-trace-id"]
    assert len(fresh) == 32 and fresh != TRACE
    assert stub.headers[1]["traceparent"].split("-")[1] == fresh


async def test_stream_ends_with_a_metadata_chunk(tmp_path: Path, unused_tcp_port: int) -> None:
    body = {**CHAT, "stream": True}
    async with (
        stub_server(unused_tcp_port),
        running(make_settings(tmp_path), config(unused_tcp_port)) as (_, client),
    ):
        resp = await client.post(
            "/v1/chat/completions", json=body, headers={"x-sluice-metadata": "true"}
        )
    assert resp.status_code == 200
    assert "x-sluice-cost-usd" not in resp.headers  # unknown when the headers leave
    assert resp.headers["x-sluice-cache"] == "none" and "x-sluice-upstream-ms" in resp.headers
    payloads = [ln[6:] for ln in resp.text.split("\n") if ln.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    last = json.loads(payloads[-2])
    assert last["object"] == "chat.completion.chunk" and last["choices"] == []
    assert set(last["sluice"]) == META_KEYS
    assert last["sluice"]["cost_usd"] == pytest.approx(0.00002)
    assert last["sluice"]["request_id"] == resp.headers["x-request-id"]


async def test_config_opt_in_and_the_openai_sdk(tmp_path: Path, unused_tcp_port: int) -> None:
    text = config(unused_tcp_port) + "observability: {response_metadata: true}\n"
    async with (
        stub_server(unused_tcp_port),
        running(make_settings(tmp_path), text) as (app, _),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        sdk = openai.AsyncOpenAI(
            base_url="http://gw/v1", api_key=MASTER, http_client=http, max_retries=0
        )
        done = await sdk.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "hi"}]
        )
        chunks = [
            c
            async for c in await sdk.chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        ]
        off = await sdk.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-sluice-metadata": "false"},
        )
    assert done.model_extra is not None and done.model_extra["sluice"]["provider"] == "up"
    assert done.choices[0].message.content == "ok"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    extra = chunks[-1].model_extra
    assert extra is not None and extra["sluice"]["cost_usd"] == pytest.approx(0.00002)
    assert off.model_extra is None or "sluice" not in off.model_extra


async def test_a_bad_metadata_header_is_a_400_naming_it(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (_, client):
        resp = await client.post(
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-sluice-metadata": "sometimes"},
        )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "x-sluice-metadata"
    assert len(resp.headers["x-sluice-trace-id"]) == 32


async def test_metrics_endpoint_counts_requests_and_checks_auth(tmp_path: Path) -> None:
    chat = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
    async with running(make_settings(tmp_path)) as (app, client):
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200
        assert (await client.post("/v1/chat/completions", json={"model": "nope"})).status_code
        assert app.runtime is not None
        await app.runtime.usage.flush()
        resp = await client.get("/metrics")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as anonymous:
            refused = await anonymous.get("/metrics")
    assert refused.status_code == 401
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    line = (
        'sluice_requests_total{error_kind="",model="mock-gpt",provider="mock",status="200",'
        'team=""} 3.0'
    )
    assert line in text
    assert 'model="other"' in text  # an unknown model name is not a label value
    for name in (
        "sluice_request_duration_seconds_bucket",
        "sluice_usage_queue_depth",
        "sluice_breaker_state",
        "sluice_active_streams",
        "sluice_tokens_total",
    ):
        assert name in text
    assert MASTER not in text


async def test_metrics_without_auth_when_configured(tmp_path: Path) -> None:
    async with (
        running(make_settings(tmp_path, metrics_auth="none")) as (app, _),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as anon,
    ):
        assert (await anon.get("/metrics")).status_code == 200


async def test_spans_reach_an_otlp_collector(tmp_path: Path, unused_tcp_port: int) -> None:
    settings = make_settings(tmp_path, otlp_endpoint=f"http://127.0.0.1:{unused_tcp_port}")
    async with stub_server(unused_tcp_port) as stub:
        async with running(settings, config(unused_tcp_port)) as (_, client):
            resp = await client.post(
                "/v1/chat/completions",
                json={**CHAT, "model": "two"},
                headers={"traceparent": TRACEPARENT},
            )
            assert resp.status_code == 200
            assert resp.headers["x-sluice-trace-id"] == TRACE
        spans = stub.spans()  # the lifespan's shutdown flushed the batch processor
    assert spans, "the collector received no spans"
    assert {s.trace_id.hex() for s in spans} == {TRACE}
    [request] = [s for s in spans if s.parent_span_id.hex() == PARENT]
    attempts = [s for s in spans if s.parent_span_id == request.span_id]
    assert len(attempts) == 2
    attrs = {kv.key: kv.value for kv in request.attributes}
    assert attrs["gen_ai.operation.name"].string_value == "chat"
    assert attrs["gen_ai.request.model"].string_value == "two"
    assert attrs["gen_ai.usage.input_tokens"].int_value == 10
    assert attrs["gen_ai.usage.output_tokens"].int_value == 5
    assert attrs["gen_ai.request.max_tokens"].int_value == 7
    assert attrs["http.response.status_code"].int_value == 200
    assert attrs["gen_ai.provider.name"].string_value == "openai_compatible"
    by_model = {
        {kv.key: kv.value for kv in a.attributes}["gen_ai.request.model"].string_value: a
        for a in attempts
    }
    failed = {kv.key: kv.value for kv in by_model["fail"].attributes}
    assert failed["error.type"].string_value == "provider_error"
    ok = {kv.key: kv.value for kv in by_model["m"].attributes}
    assert "error.type" not in ok and ok["gen_ai.usage.output_tokens"].int_value == 5
    # Each upstream call carried its own attempt span as the parent.
    sent = [h["traceparent"].split("-")[2] for h in stub.headers]
    assert sent == [by_model["fail"].span_id.hex(), by_model["m"].span_id.hex()]
