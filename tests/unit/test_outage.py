"""Which errors mean "the database is unavailable" (by type and driver code, never text),
and the outage log: one line per outage edge, a bug's traceback at most once per period."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from sluice.clock import FakeClock
from sluice.errors import ErrorKind, retry_after_value
from sluice.outage import OutageLog
from sluice.storage.availability import as_dependency_unavailable, database_unavailable
from tests.logs import has_traceback


class DriverError(Exception):
    """Like asyncpg's errors (and SQLAlchemy's adaptation of them): a ``sqlstate``."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__("some text that must not matter")
        self.sqlstate = sqlstate


def _sqlite(code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("some text that must not matter")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError(), True),  # the driver's connect or command timeout
        (PoolTimeout("QueuePool limit reached"), True),
        (DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True), True),
        (OperationalError("SELECT 1", {}, DriverError("57P01")), True),  # admin shutdown
        (DBAPIError("SELECT 1", {}, DriverError("08006")), True),  # connection failure
        (DBAPIError("SELECT 1", {}, DriverError("53300")), True),  # too many connections
        (IntegrityError("INSERT", {}, DriverError("23505")), False),  # a duplicate: the caller
        (DBAPIError("SELECT", {}, DriverError("42P01")), False),  # no such table: a bug
        (OperationalError("SELECT", {}, _sqlite(5)), True),  # SQLITE_BUSY
        (OperationalError("SELECT", {}, _sqlite(10 | (1 << 8))), True),  # an extended IOERR
        (OperationalError("SELECT", {}, _sqlite(1)), False),  # SQLITE_ERROR: a bug
        (StatementError("bind", "SELECT", {}, ConnectionRefusedError()), True),
        (StatementError("bind", "SELECT", {}, ValueError("bad")), False),
        (ValueError("connection refused"), False),  # the text does not count
        (RuntimeError(), False),
    ],
)
def test_database_unavailable_by_type_and_code(exc: BaseException, unavailable: bool) -> None:
    assert database_unavailable(exc) is unavailable


def test_an_unavailable_database_is_a_503_with_retry_after() -> None:
    err = as_dependency_unavailable(ConnectionRefusedError())
    assert err is not None
    assert (err.kind, err.status, err.code) == (
        ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE,
        503,
        "dependency_unavailable",
    )
    assert int(retry_after_value(err) or 0) > 0
    assert as_dependency_unavailable(KeyError("x")) is None


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, bool, str]]:
    return [
        (r.levelno, has_traceback(r), r.getMessage())
        for r in caplog.records
        if r.name == "test.outage" and r.levelno >= logging.INFO
    ]


def test_one_line_when_the_outage_starts_and_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="test.outage")
    clock = FakeClock()
    outage = OutageLog(
        logging.getLogger("test.outage"), "key refresh", meanwhile="serving", clock=clock
    )
    outage.succeeded()  # nothing to say while it works
    for _ in range(20):
        outage.failed(ConnectionRefusedError(111, "refused"))
        clock.advance(0.25)
    assert outage.down and outage.failures == 20
    outage.succeeded()
    outage.succeeded()
    assert not outage.down
    lines = _records(caplog)
    assert [(level, tb) for level, tb, _ in lines] == [
        (logging.WARNING, False),
        (logging.INFO, False),
    ]
    assert "the database is unavailable (ConnectionRefusedError" in lines[0][2]
    assert "20 failed attempt(s) over 5.0 s" in lines[1][2]


def test_a_bug_keeps_its_traceback_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.outage")
    clock = FakeClock()
    outage = OutageLog(
        logging.getLogger("test.outage"),
        "retention purge",
        meanwhile="retrying",
        clock=clock,
        traceback_every_s=60,
    )
    for _ in range(10):
        outage.failed(KeyError("bug"))
        clock.advance(1)
    clock.advance(60)
    outage.failed(KeyError("bug"))
    assert not outage.down  # a bug is not an outage: no recovery line follows
    outage.succeeded()
    assert [(level, tb) for level, tb, _ in _records(caplog)] == [
        (logging.WARNING, True),
        (logging.WARNING, True),
    ]
