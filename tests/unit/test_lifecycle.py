"""The serving phase: the drain after SIGTERM, the SIGTERM hook, and the bring-up that
retries the database steps until they succeed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest
from sqlalchemy.exc import OperationalError

from sluice.bringup import FIRST_RETRY_S, BringUp, database_error
from sluice.clock import FakeClock
from sluice.lifecycle import Lifecycle, Phase, SigtermHook
from tests.logs import has_traceback


async def _request(life: Lifecycle, work: asyncio.Future[None], log: list[str]) -> None:
    """A request as the app runs one: tracked while it runs; cancelled, it answers."""
    task = life.track()
    try:
        await work
        log.append("finished")
    except asyncio.CancelledError:
        log.append("cancelled")  # the data plane answers here (503 or an error event)
    finally:
        life.done(task)


async def test_drain_with_nothing_in_flight_ends_at_once() -> None:
    life = Lifecycle()
    life.mark_ready()
    await asyncio.wait_for(life.drain(grace_s=3600), timeout=5)
    assert life.phase is Phase.DRAINING
    assert not life.ready


async def test_drain_waits_for_requests_that_finish_in_time() -> None:
    life = Lifecycle()
    life.mark_ready()
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    log: list[str] = []
    request = asyncio.ensure_future(_request(life, work, log))
    await asyncio.sleep(0)
    drain = asyncio.ensure_future(life.drain(grace_s=3600))
    await asyncio.sleep(0)
    assert life.phase is Phase.DRAINING and not drain.done()
    work.set_result(None)
    await asyncio.wait_for(drain, timeout=5)
    await request
    assert log == ["finished"]
    assert not life.inflight


async def test_drain_cancels_what_still_runs_at_the_deadline() -> None:
    life = Lifecycle()
    life.mark_ready()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    log: list[str] = []
    request = asyncio.ensure_future(_request(life, never, log))
    await asyncio.sleep(0)
    await asyncio.wait_for(life.drain(grace_s=0.01), timeout=5)
    assert log == ["cancelled"], "the request ended (and answered) before the drain returned"
    assert request.done() and not life.inflight


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """A Python SIGTERM handler standing for the server's (uvicorn's)."""
    calls: list[int] = []

    def handler(sig: int, frame: FrameType | None) -> None:
        calls.append(sig)

    original = signal.signal(signal.SIGTERM, handler)
    try:
        yield calls
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_sigterm_starts_the_drain_and_the_server_stops_after_it(
    server_handler: list[int],
) -> None:
    started = asyncio.Event()
    hook = SigtermHook(started.set)
    assert hook.install()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(started.wait(), timeout=5)
    assert server_handler == [], "the server keeps serving while the app drains"
    hook.release()
    assert server_handler == [signal.SIGTERM]
    hook.uninstall()
    assert signal.getsignal(signal.SIGTERM) is not None
    assert signal.getsignal(signal.SIGTERM) != hook._handle


async def test_a_second_sigterm_stops_the_server_at_once(server_handler: list[int]) -> None:
    started: list[int] = []
    hook = SigtermHook(lambda: started.append(1))
    assert hook.install()
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(100):
        if started:
            break
        await asyncio.sleep(0.01)
    assert started == [1]
    assert server_handler == [signal.SIGTERM]
    hook.uninstall()


async def test_no_hook_without_a_python_handler() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert not SigtermHook(lambda: None).install()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_bring_up_retries_until_the_database_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    life = Lifecycle()
    attempts: list[int] = []

    async def steps() -> None:
        attempts.append(1)
        if len(attempts) <= 3:
            raise ConnectionRefusedError(111, "Connection refused")

    clock = FakeClock()
    bring_up = BringUp(steps, life, retry_max_s=0.8, clock=clock)
    with caplog.at_level(logging.INFO, logger="sluice"):
        assert not await bring_up.attempt()
        assert life.phase is Phase.STARTING
        assert life.last_error is not None and "ConnectionRefusedError" in life.last_error
        await asyncio.wait_for(bring_up.retry(), timeout=5)
    assert life.ready and len(attempts) == 4
    assert clock.sleeps == [FIRST_RETRY_S, 0.8]  # doubling from the default, capped
    messages = [r.getMessage() for r in caplog.records]
    outage = [m for m in messages if "the database is unavailable" in m]
    assert len(outage) == 1, "one line when the outage starts, not one per attempt"
    assert any("answers again after 3 failed attempt(s)" in m for m in messages), messages


async def test_bring_up_logs_again_when_the_cause_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    life = Lifecycle()
    errors: list[Exception] = [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
    ]

    async def steps() -> None:
        raise errors.pop(0)

    bring_up = BringUp(steps, life, retry_max_s=1)
    with caplog.at_level(logging.WARNING, logger="sluice"):
        for _ in range(3):
            assert not await bring_up.attempt()
    assert len(caplog.records) == 2
    assert caplog.records[1].getMessage().startswith("the database is unavailable (TimeoutError)")


async def test_a_bug_in_the_steps_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def steps() -> None:
        raise KeyError("bug")

    with caplog.at_level(logging.WARNING, logger="sluice"):
        assert not await BringUp(steps, Lifecycle(), retry_max_s=1).attempt()
    assert has_traceback(caplog.records[0])


def test_database_errors_are_told_by_type() -> None:
    assert database_error(ConnectionRefusedError())
    assert database_error(TimeoutError())
    assert database_error(OperationalError("SELECT 1", {}, Exception("down")))
    assert not database_error(KeyError("x"))
