"""Whether a database error means the database is unavailable (down, unreachable, frozen,
refusing connections, out of connections), as opposed to a bug or a refused statement.

One classification for every caller: the admin API and the console (503
``dependency_unavailable`` instead of 500), the periodic tasks (one log line per outage
edge instead of a traceback per attempt, ``sluice.outage``) and start-up
(``sluice.bringup``). Decided by the exception's type and the driver's error code, never
by its text.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from sluice.errors import GatewayError, dependency_unavailable

UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
"""SQLSTATE classes of an unavailable database: connection exception (08), insufficient
resources (53: too many connections, disk full), operator intervention (57: shutdown,
"cannot connect now", a statement cancelled by the server), system error (58: I/O)."""

_SQLITE_UNAVAILABLE = frozenset({5, 6, 10, 13, 14})
"""SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN (primary codes)."""


def database_unavailable(exc: BaseException) -> bool:
    """``exc`` says the database cannot serve now: a refused, reset or timed-out connection
    (``OSError``, which ``TimeoutError`` is, raised by the driver as such), a wait for a
    pooled connection that timed out, a connection the driver found dead (SQLAlchemy's
    ``connection_invalidated``), or a driver error whose code is in
    :data:`UNAVAILABLE_SQLSTATE_CLASSES` (PostgreSQL) or :data:`_SQLITE_UNAVAILABLE`."""
    if isinstance(exc, OSError | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, StatementError):  # DBAPIError included: judge the driver's error
        return exc.orig is not None and exc.orig is not exc and database_unavailable(exc.orig)
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(code, str):
        return code[:2] in UNAVAILABLE_SQLSTATE_CLASSES
    lite = getattr(exc, "sqlite_errorcode", None)
    if isinstance(lite, int):
        return lite & 0xFF in _SQLITE_UNAVAILABLE
    return False


def as_dependency_unavailable(exc: BaseException) -> GatewayError | None:
    """The 503 ``dependency_unavailable`` (with ``Retry-After``) a request answers when
    ``exc`` says the database is unavailable; ``None`` for any other error (a bug: 500)."""
    if not database_unavailable(exc):
        return None
    return dependency_unavailable("the database is unavailable; retry the request")
