"""The stdio transport Sluice supervises: one child process speaking newline-delimited
JSON-RPC on stdin/stdout.

Unlike the SDK's ``stdio_client`` it keeps the process's stderr as a bounded tail (for
health and logs) instead of passing it through, never holds a message longer than the
configured bound (it is skipped, and the request it answers gets a ``RESULT_TOO_LARGE``
error while the process keeps serving), tells when the process ended, and kills the whole
process group on exit: nothing Sluice started outlives the transport.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import anyio
import orjson
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import types
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

from sluice.mcp.errors import RESULT_TOO_LARGE

log = logging.getLogger("sluice.mcp")

GRACE_S = 2.0
"""How long a process may take to exit after its stdin closes, and again after SIGTERM."""


class StderrTail:
    """The latest ``max_bytes`` of a process's stderr, as lines."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._lines: deque[str] = deque()
        self._size = 0

    def add(self, line: str) -> None:
        line = line[-self._max :]
        self._lines.append(line)
        self._size += len(line)
        while self._size > self._max and self._lines:
            self._size -= len(self._lines.popleft())

    def last(self) -> str | None:
        return self._lines[-1] if self._lines else None

    def text(self) -> str:
        return "\n".join(self._lines)


@dataclass(slots=True, eq=False)
class StdioEnd:
    """How a transport ended (set once its process is gone or it was given up)."""

    ended: anyio.Event = field(default_factory=anyio.Event)
    reason: str | None = None
    pid: int | None = None

    def finish(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.ended.set()


@dataclass(frozen=True, slots=True)
class StdioSpec:
    command: str
    args: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None
    max_message_bytes: int
    name: str


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _stop(process: Process) -> None:
    """Close stdin, then SIGTERM, then SIGKILL to the whole group (the process and its
    children), each after :data:`GRACE_S`; the process is reaped before returning."""
    with anyio.CancelScope(shield=True):
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                await process.stdin.aclose()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with anyio.move_on_after(GRACE_S):
                await process.wait()
                break
            _kill_group(process.pid, sig)
        else:
            await process.wait()
        _kill_group(process.pid, signal.SIGKILL)  # children left behind by a clean exit


async def _read_stdout(
    process: Process, spec: StdioSpec, out: MemoryObjectSendStream[SessionMessage | Exception]
) -> str:
    assert process.stdout is not None
    reader = BufferedByteReceiveStream(process.stdout)
    async with out:
        while True:
            try:
                line = await reader.receive_until(b"\n", spec.max_message_bytes)
            except anyio.IncompleteRead:
                return "the process closed its output"
            except anyio.EndOfStream:
                return "the process closed its output"
            except anyio.DelimiterNotFound:
                if (refusal := await _skip_oversized(reader, spec)) is not None:
                    await out.send(refusal)
                continue
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return "the process closed its output"
            if not line.strip():
                continue
            try:
                message = types.JSONRPCMessage.model_validate_json(line)
            except ValueError as exc:
                await out.send(exc)
                continue
            await out.send(SessionMessage(message))


_ID = rb'("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})'
_HEAD_ID = re.compile(rb'^\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*' + _ID)
_TAIL_ID = re.compile(rb'"id"\s*:\s*' + _ID + rb"\s*\}\s*$")
EDGE_BYTES = 512
"""How much of an oversized message's start and end is kept to find the request id."""
SKIP_BYTES = 64 * 1024
"""An oversized message is read past in pieces of this size."""


async def _skip_oversized(
    reader: BufferedByteReceiveStream, spec: StdioSpec
) -> SessionMessage | None:
    """Consume a message longer than ``spec.max_message_bytes`` without holding it, and
    answer the request it responds to with ``RESULT_TOO_LARGE``. The id is found where
    serialisers put it: first after ``jsonrpc`` (Python SDK) or last (TypeScript SDK);
    without one the message is dropped and logged (its request meets its deadline)."""
    head = bytes(reader.buffer[:EDGE_BYTES])
    tail = b""
    size = 0
    while True:
        try:
            rest = await reader.receive_until(b"\n", SKIP_BYTES)
        except anyio.DelimiterNotFound:
            chunk = await reader.receive(SKIP_BYTES)  # the buffered bytes, no newline in them
            size += len(chunk)
            tail = (tail + chunk)[-EDGE_BYTES:]
            continue
        size += len(rest)
        tail = (tail + rest)[-EDGE_BYTES:]
        break
    found = _HEAD_ID.match(head) or _TAIL_ID.search(tail)
    log.warning(
        "mcp server %s: a %d-byte message exceeded %d bytes and was dropped",
        spec.name,
        size,
        spec.max_message_bytes,
    )
    if found is None:
        return None
    try:
        ident = orjson.loads(found.group(1))
    except orjson.JSONDecodeError:
        return None
    error = types.JSONRPCError(
        jsonrpc="2.0",
        id=ident,
        error=types.ErrorData(
            code=RESULT_TOO_LARGE,
            message=f"the answer of MCP server {spec.name!r} is larger than the gateway's "
            f"limit of {spec.max_message_bytes} bytes (mcp.max_result_bytes)",
        ),
    )
    return SessionMessage(types.JSONRPCMessage(error))


async def _write_stdin(process: Process, inbox: MemoryObjectReceiveStream[SessionMessage]) -> None:
    assert process.stdin is not None
    async with inbox:
        async for item in inbox:
            data = item.message.model_dump_json(by_alias=True, exclude_none=True)
            try:
                await process.stdin.send(data.encode() + b"\n")
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return


async def _read_stderr(process: Process, tail: StderrTail, name: str) -> None:
    assert process.stderr is not None
    reader = BufferedByteReceiveStream(process.stderr)
    while True:
        try:
            line = await reader.receive_until(b"\n", 64 * 1024)
        except anyio.DelimiterNotFound:
            line = await reader.receive(64 * 1024)  # keep going past an endless line
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
            return
        text = line.decode(errors="replace").rstrip()
        if text:
            tail.add(text)
            log.debug("mcp server %s stderr: %s", name, text)


@contextlib.asynccontextmanager
async def stdio_transport(
    spec: StdioSpec, *, tail: StderrTail, end: StdioEnd
) -> AsyncIterator[
    tuple[
        MemoryObjectReceiveStream[SessionMessage | Exception],
        MemoryObjectSendStream[SessionMessage],
    ]
]:
    """Start the process and yield the (read, write) streams a ``ClientSession`` takes.

    ``end`` is finished (with a reason) when the process's output ends; on exit the process
    group is stopped and reaped. ``OSError``: the program could not be started.
    """
    process = await anyio.open_process(
        [spec.command, *spec.args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**get_default_environment(), **spec.env},
        cwd=spec.cwd,
        start_new_session=True,  # its own process group, so children are killed with it
    )
    end.pid = process.pid
    read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_in, write_out = anyio.create_memory_object_stream[SessionMessage](0)

    stopping = False

    async def stdout() -> None:
        reason = await _read_stdout(process, spec, read_in)
        if stopping:  # the output ended because we stopped it: not a failure
            return
        code = process.returncode
        end.finish(reason if code is None else f"{reason} (exit status {code})")

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stdout)
            tg.start_soon(_write_stdin, process, write_out)
            tg.start_soon(_read_stderr, process, tail, spec.name)
            try:
                yield read_out, write_in
            finally:
                stopping = True
                await _stop(process)
                end.finish(f"stopped (exit status {process.returncode})")
                tg.cancel_scope.cancel()
    finally:
        for stream in (read_in, read_out, write_in, write_out):
            await stream.aclose()
        await process.aclose()
