"""Databases migrated to head once per test session, for tests to start from copies.

Running every migration costs a test about a second (SQLite) to two (PostgreSQL); a copy
of a migrated database is the same schema at a fraction of that. Tests of the migrations
themselves (``tests/contract/test_storage.py`` and the revision tests) still run them, and
the end-to-end gateways still migrate their empty databases at start.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


async def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest revision, as a gateway's start does."""
    from sluice.storage.sql.migrate import upgrade_engine
    from sluice.storage.sql.repository import SqlStorage

    store = SqlStorage.from_url(url)
    try:
        await upgrade_engine(store.engine)
    finally:
        await store.close()


@functools.cache
def migrated_sqlite_file() -> Path:
    """A SQLite file at head, made on first use (on a thread of its own, so an async test
    may ask too) and removed when the session's process exits."""
    root = Path(tempfile.mkdtemp(prefix="sluice-migrated-"))
    atexit.register(shutil.rmtree, root, True)
    path = root / "sluice.db"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate(f"sqlite+aiosqlite:///{path}")).result()
    for suffix in ("-wal", "-shm", "-journal"):  # closed cleanly: everything is in the file
        assert not path.with_name(path.name + suffix).exists(), suffix
    return path


def copy_migrated_sqlite(path: Path) -> None:
    """Put a migrated SQLite database at ``path`` unless a database is there already."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite_file(), path)
