"""Shared fixtures: real PostgreSQL and Redis when reachable.

Outside CI a missing service skips its tests; with ``CI`` set it fails them, so CI can
never pass without exercising PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.migrated import copy_migrated_sqlite, migrate

PG_URL = os.environ.get(
    "SLUICE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SLUICE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, port: int) -> None:
    if _reachable(url, port):
        return
    message = f"{name} is not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI requires it (start it, see README 'Tests')")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    require_service("PostgreSQL", PG_URL, 5432)
    return PG_URL


def _pg_admin(server_url: str, sql: str) -> None:
    import asyncpg

    plain = server_url.replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> None:
        conn = await asyncpg.connect(plain)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def _migrated_pg_template(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session: the ``storage`` fixture's
    databases are copies of it (``CREATE DATABASE ... TEMPLATE``), which is faster than
    running every migration per test. Nothing connects to it after the migration, as a
    template must have no other sessions while it is copied."""
    name = f"sluice_tpl_{uuid.uuid4().hex[:12]}"
    _pg_admin(postgres_server_url, f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(migrate(f"{postgres_server_url.rsplit('/', 1)[0]}/{name}"))
        yield name
    finally:
        _pg_admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Dropper:
    """Drops finished tests' databases on a background thread.

    ``DROP DATABASE`` waits for a checkpoint (about a second here), which is disk time the
    next test need not wait for. At most ``bound`` drops wait at once (then ``drop`` blocks),
    and ``close`` waits for every one, so no database outlives the session."""

    def __init__(self, server_url: str, bound: int = 4) -> None:
        self._server_url = server_url
        self._names: queue.Queue[str | None] = queue.Queue(maxsize=bound)
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="pg-dropper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                _pg_admin(self._server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except BaseException as exc:  # reported by close
                self._errors.append(exc)

    def drop(self, name: str) -> None:
        self._names.put(name)

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()
        if self._errors:
            raise self._errors[0]


@pytest.fixture(scope="session")
def _pg_dropper(postgres_server_url: str) -> Iterator[_Dropper]:
    dropper = _Dropper(postgres_server_url)
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture
def postgres_url(
    postgres_server_url: str, _pg_dropper: _Dropper, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (in the background).

    Empty, unless the test also uses ``storage``: then it is a copy of the migrated
    template (``storage`` would migrate it to head anyway)."""
    name = f"sluice_t_{uuid.uuid4().hex[:12]}"
    template = ""
    if "storage" in request.fixturenames:
        template = f' TEMPLATE "{request.getfixturevalue("_migrated_pg_template")}"'
    _pg_admin(postgres_server_url, f'CREATE DATABASE "{name}"{template}')
    base = postgres_server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _pg_dropper.drop(name)


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture
def sqlite_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A SQLite database file for one test: absent (created on first connect), unless the
    test also uses ``storage``: then it is a copy of the migrated file."""
    path = tmp_path / "sluice.db"
    if "storage" in request.fixturenames:
        copy_migrated_sqlite(path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs over SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[object]:
    """A store over a database at head: a copy of a once-migrated database (see
    ``postgres_url``/``sqlite_url``); ``upgrade_engine`` then confirms the revision."""
    from sluice.storage.sql.migrate import upgrade_engine
    from sluice.storage.sql.repository import SqlStorage

    store = SqlStorage.from_url(database_url)
    await upgrade_engine(store.engine)
    try:
        yield store
    finally:
        await store.close()


pytest_plugins = ["tests.services"]


@pytest.fixture(autouse=True)
def _no_leftover_redaction() -> Iterator[None]:
    """An in-process lifespan puts its redaction filter on the root logger's handlers, which
    include pytest's capture handlers (kept for the whole session): take it off after each
    test, so one test's gateway does not change what the next test's log capture sees."""
    yield
    from sluice.observability.redact import RedactingFilter

    for handler in logging.getLogger().handlers:
        for f in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(f)
