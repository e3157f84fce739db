"""The gateway relays server-everything to the SDK's client: tools on both endpoints."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import McpError
from mcp.types import (
    INVALID_PARAMS,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    TextContent,
)

from sluice.clock import FakeClock
from sluice.mcp.errors import NOT_FOUND
from tests.mcp.gateway_harness import (
    DEADLINE_S,
    INIT,
    JSON_HEADERS,
    connect,
    serve_gateway,
    stdio_server,
)


def text(result: object) -> str:
    parts = result.content  # type: ignore[attr-defined]
    return "\n".join(c.text for c in parts if isinstance(c, TextContent))


class TickingClock(FakeClock):
    """Moves 1 ms each time the monotonic clock is read: a call's latency is then measured
    on the injected clock, and not zero."""

    def monotonic(self) -> float:
        self.advance(0.001)
        return super().monotonic()


async def test_per_server_lists_and_calls_tools() -> None:
    clock = TickingClock()
    async with (
        serve_gateway((stdio_server(),), clock=clock) as gw,
        connect(gw.base + "/mcp/local") as client,
    ):
        with anyio.fail_after(DEADLINE_S):
            tools = await client.list_tools()
            names = {t.name for t in tools.tools}
            assert {"echo", "get-sum", "trigger-long-running-operation"} <= names
            result = await client.call_tool("echo", {"message": "hi"})
        assert not result.isError
        assert "hi" in text(result)
        [row] = gw.rows("mcp.tool")
        assert (row.key_id, row.user_id, row.team_id, row.org_id) == ("k_alice", "u1", "t1", "o1")
        assert (row.mcp_server, row.mcp_tool, row.status, row.rpc_error) == (
            "local",
            "echo",
            200,
            None,
        )
        assert row.bytes_in > 0 and row.bytes_out > 0 and row.latency_ms > 0
        [session_row] = gw.rows("mcp.session")
        assert session_row.mcp_server == "local" and session_row.key_id == "k_alice"


async def test_aggregated_prefixes_and_filters() -> None:
    servers = (stdio_server("local"), stdio_server("other", tools={"deny": ("get-env",)}))
    async with serve_gateway(servers) as gw, connect(gw.base + "/mcp") as client:
        with anyio.fail_after(DEADLINE_S):
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"local__echo", "other__echo"} <= names
            assert "other__get-env" not in names and "local__get-env" in names
            result = await client.call_tool("other__get-sum", {"a": 2, "b": 3})
            assert "5" in text(result)
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert prompts and all(p.startswith(("local__", "other__")) for p in prompts)
        assert gw.rows("mcp.tool")[-1].mcp_server == "other"


async def test_excluded_server_and_tool() -> None:
    servers = (stdio_server("local"), stdio_server("other"))
    async with serve_gateway(servers) as gw:
        async with connect(gw.base + "/mcp", key="sk-narrow") as client:
            with anyio.fail_after(DEADLINE_S):
                names = {t.name for t in (await client.list_tools()).tools}
                assert "local__echo" in names
                assert not any(n.startswith("other__") for n in names)
                assert "local__get-env" not in names
                with pytest.raises(McpError) as denied:
                    await client.call_tool("local__get-env", {})
                assert denied.value.error.code == INVALID_PARAMS
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                gw.base + "/mcp/other",
                headers={"Authorization": "Bearer sk-narrow", **JSON_HEADERS},
                content=INIT,
            )
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == NOT_FOUND


async def test_progress_and_concurrent_calls() -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with serve_gateway((stdio_server(),)) as gw, connect(gw.base + "/mcp/local") as client:
        answers: dict[int, str] = {}

        async def call(i: int, duration: float) -> None:
            result = await client.call_tool(
                "trigger-long-running-operation",
                {"duration": duration, "steps": 2},
                progress_callback=on_progress if i == 0 else None,
            )
            answers[i] = text(result)

        async def add(i: int) -> None:
            answers[i] = text(await client.call_tool("get-sum", {"a": i, "b": 100}))

        with anyio.fail_after(DEADLINE_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, 0, 1.0)
                for i in range(1, 5):
                    tg.start_soon(add, i)
        assert seen == [1, 2]
        assert "Duration: 1" in answers[0]
        for i in range(1, 5):
            assert str(100 + i) in answers[i]
        assert len(gw.rows("mcp.tool")) == 5


async def test_sampling_and_elicitation_round_trips() -> None:
    async def sampling(ctx: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="sampled!"), model="m"
        )

    async def elicitation(ctx: Any, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "Ada"})

    async with (
        serve_gateway((stdio_server(),)) as gw,
        connect(
            gw.base + "/mcp/local", sampling_callback=sampling, elicitation_callback=elicitation
        ) as client,
    ):
        with anyio.fail_after(DEADLINE_S):
            sampled = await client.call_tool("trigger-sampling-request", {"prompt": "hello"})
            assert "sampled!" in text(sampled)
            elicited = await client.call_tool("trigger-elicitation-request", {})
            assert "Ada" in text(elicited)


async def test_logging_resources_cancel_and_ping() -> None:
    logs: list[Any] = []
    got_log = anyio.Event()

    async def on_log(params: Any) -> None:
        logs.append(params)
        got_log.set()

    async with (
        serve_gateway((stdio_server(),)) as gw,
        connect(gw.base + "/mcp/local", logging_callback=on_log) as client,
    ):
        with anyio.fail_after(DEADLINE_S):
            await client.send_ping()
            await client.set_logging_level("debug")
            await client.call_tool("toggle-simulated-logging", {})
            await got_log.wait()
            resources = (await client.list_resources()).resources
            assert resources
            uri = resources[0].uri
            read = await client.read_resource(uri)
            assert read.contents
            await client.subscribe_resource(uri)
            await client.unsubscribe_resource(uri)
            # Cancellation: the client gives up; the gateway answers the next call at once.
            with anyio.move_on_after(1.0):
                await client.call_tool(
                    "trigger-long-running-operation", {"duration": 20, "steps": 2}
                )
            assert "7" in text(await client.call_tool("get-sum", {"a": 3, "b": 4}))
        assert logs
