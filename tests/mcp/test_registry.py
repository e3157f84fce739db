"""The upstream side of the MCP gateway: transports, supervision, health, deadlines."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp.shared.exceptions import McpError

from sluice.clock import FakeClock, SystemClock
from sluice.config.mcp import McpConfig, McpServerConfig
from sluice.errors import GatewayError
from sluice.mcp.errors import RESULT_TOO_LARGE
from sluice.mcp.registry import Registry, ServerHealth
from sluice.mcp.stdio import StderrTail
from sluice.mcp.supervisor import backoff_s
from tests.mcp.conftest import everything_stdio, tool_stdio


class WatchedClock(FakeClock):
    """A fake clock whose sleeps a test can wait for."""

    def __init__(self) -> None:
        super().__init__()
        self.slept = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        async with self.slept:
            self.slept.notify_all()

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(30), self.slept:
            await self.slept.wait_for(done)


def config(*servers: dict[str, Any], **extra: Any) -> McpConfig:
    return McpConfig.model_validate({"servers": list(servers), **extra})


@asynccontextmanager
async def registry(cfg: McpConfig, clock: Any = None) -> AsyncIterator[Registry]:
    async with Registry(cfg, clock=clock or SystemClock()) as reg:
        yield reg


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_everything_over_stdio_lists_and_calls_tools() -> None:
    cfg = config({"name": "every", "transport": "stdio", **everything_stdio()})
    async with registry(cfg) as reg, reg.open("every") as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        assert "echo" in tools
        result = await session.call_tool("echo", {"message": "hello"})
        assert "hello" in result.content[0].text  # type: ignore[union-attr]
        assert reg.health()["every"].up


async def test_everything_over_http_transports(everything_http: tuple[str, str]) -> None:
    transport, url = everything_http
    cfg = config({"name": "every", "transport": transport, "url": url})
    async with registry(cfg) as reg:
        async with reg.open("every") as session:
            tools = {t.name for t in (await session.list_tools()).tools}
            assert "echo" in tools
            result = await session.call_tool("echo", {"message": "over http"})
            assert "over http" in result.content[0].text  # type: ignore[union-attr]
        health = reg.health()["every"]
        assert health.up and health.last_error is None


async def test_unknown_server_is_not_found() -> None:
    async with registry(config()) as reg:
        with pytest.raises(GatewayError) as err:
            reg.open("nope")
        assert err.value.status == 404


async def test_shared_stdio_serves_concurrent_leases_from_one_process() -> None:
    cfg = config({"name": "tools", "transport": "stdio", "share": True, **tool_stdio()})
    async with registry(cfg) as reg:

        async def call(i: int) -> tuple[str, int]:
            async with reg.open("tools") as session:
                echoed = await session.call_tool("echo", {"text": f"n{i}"})
                pid = await session.call_tool("pid", {})
                return echoed.content[0].text, int(pid.content[0].text)  # type: ignore[union-attr]

        answers = await asyncio.gather(*(call(i) for i in range(8)))
        assert [text for text, _ in answers] == [f"n{i}" for i in range(8)]
        pids = {pid for _, pid in answers}
        assert len(pids) == 1
        assert reg.health()["tools"].up
    assert gone(pids.pop())


async def test_own_stdio_process_per_lease_is_gone_when_the_lease_closes() -> None:
    cfg = config({"name": "tools", "transport": "stdio", **tool_stdio()})
    async with registry(cfg) as reg:
        async with reg.open("tools") as a, reg.open("tools") as b:
            pid_a = int((await a.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
            pid_b = int((await b.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
        assert pid_a != pid_b
        assert gone(pid_a) and gone(pid_b)


async def test_shared_server_that_dies_mid_call_gives_an_error_and_restarts() -> None:
    clock = WatchedClock()
    cfg = config({"name": "tools", "transport": "stdio", "share": True, **tool_stdio()})
    async with registry(cfg, clock) as reg:
        async with reg.open("tools") as session:
            first = int((await session.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
            with pytest.raises(McpError):
                await session.call_tool("die", {})
        await clock.until(lambda: reg.health()["tools"].restarts == 1)
        health = reg.health()["tools"]
        assert "dying on request" in (health.last_error or "")
        assert clock.sleeps == [0.5]
        async with reg.open("tools") as session:
            second = int((await session.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
        assert second != first and gone(first)
        assert reg.health()["tools"].up


async def test_crash_loop_backs_off_exponentially_up_to_the_cap() -> None:
    clock = WatchedClock()
    crash = {"command": "sh", "args": ["-c", "echo broken config >&2; exit 3"]}
    cfg = config(
        {"name": "bad", "transport": "stdio", "share": True, **crash},
        restart_backoff_s=0.5,
        restart_backoff_max_s=3,
    )
    async with registry(cfg, clock) as reg:
        await clock.until(lambda: len(clock.sleeps) >= 5)
        health = reg.health()["bad"]
        assert not health.up and health.restarts >= 4
        assert "broken config" in (health.last_error or "")
    assert clock.sleeps[:5] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_s(100, base_s=1, max_s=30) == 30


async def test_upstream_that_never_answers_hits_the_deadline() -> None:
    cfg = config({"name": "tools", "transport": "stdio", "timeout_s": 3, **tool_stdio()})
    async with registry(cfg) as reg, reg.open("tools") as session:
        with pytest.raises(McpError) as err:
            await session.call_tool("never", {})
        assert err.value.error.code == 408
        assert "Timed out" in (reg.health()["tools"].last_error or "")
        assert (await session.call_tool("echo", {"text": "still"})).content[0].text == "still"  # type: ignore[union-attr]


async def test_oversized_answer_is_an_error_for_its_request_and_the_server_keeps_serving() -> None:
    cfg = config({"name": "tools", "transport": "stdio", **tool_stdio()}, max_result_bytes=4096)
    async with registry(cfg) as reg, reg.open("tools") as session:
        with pytest.raises(McpError) as err:
            await session.call_tool("big", {"size": 100_000})
        assert err.value.error.code == RESULT_TOO_LARGE
        assert "4096 bytes" in err.value.error.message
        assert (await session.call_tool("echo", {"text": "still"})).content[0].text == "still"  # type: ignore[union-attr]
        assert reg.health()["tools"].restarts == 0


async def test_program_that_cannot_start_is_a_clean_error() -> None:
    cfg = config({"name": "missing", "transport": "stdio", "command": "/nonexistent/mcp"})
    async with registry(cfg) as reg:
        with pytest.raises(GatewayError) as err:
            async with reg.open("missing"):
                pass
        assert err.value.status == 502
        assert not reg.health()["missing"].up
        assert reg.health()["missing"].last_error


async def test_stored_servers_are_added_and_removed_while_running() -> None:
    async with registry(config()) as reg:
        server = McpServerConfig.model_validate(
            {"name": "tools", "transport": "stdio", "share": True, **tool_stdio()}
        )
        await reg.set_stored([server])
        assert set(reg.servers()) == {"tools"}
        async with reg.open("tools") as session:
            pid = int((await session.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
        await reg.set_stored([])
        assert set(reg.servers()) == set() and gone(pid)


async def test_a_session_that_ends_normally_leaves_the_server_healthy() -> None:
    async with registry(config({"name": "tools", "transport": "stdio", **tool_stdio()})) as reg:
        for _ in range(2):
            async with reg.open("tools") as session:
                await session.call_tool("echo", {"text": "hi"})
        assert reg.health()["tools"] == ServerHealth(up=True, last_error=None, restarts=0)


async def test_removing_a_stored_server_kills_its_per_session_processes() -> None:
    async with registry(config()) as reg:
        server = McpServerConfig.model_validate(
            {"name": "tools", "transport": "stdio", **tool_stdio()}
        )
        await reg.set_stored([server])
        async with reg.open("tools") as session:
            pid = int((await session.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
            await reg.set_stored([])
            with pytest.raises(McpError):
                await session.call_tool("echo", {"text": "still there?"})
        assert gone(pid)


def test_stderr_tail_is_bounded() -> None:
    tail = StderrTail(10)
    for line in ("aaaa", "bbbb", "cccc", "dddddddddddddddd"):
        tail.add(line)
    assert tail.last() == "dddddddddd"
    assert len(tail.text()) <= 10
