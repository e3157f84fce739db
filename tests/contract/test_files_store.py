"""File metadata (``Storage.files``), over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sluice.files.base import FileRecord
from sluice.files.owner import FileOwner
from sluice.storage.sql.repository import SqlStorage

ALICE = FileOwner("u-alice", None, "k-alice-1")
ALICE_OTHER_KEY = FileOwner("u-alice", None, "k-alice-2")
TEAM = FileOwner(None, "t-data", "k-sa-1")
MASTER = FileOwner(None, None, "master")


def record(
    file_id: str,
    owner: FileOwner,
    *,
    size: int = 10,
    created: int = 1000,
    expires: int | None = None,
    purpose: str = "batch",
) -> FileRecord:
    return FileRecord(
        id=file_id,
        purpose=purpose,
        filename=f"{file_id}.jsonl",
        bytes=size,
        created_at=created,
        expires_at=expires,
        user_id=owner.user_id,
        team_id=owner.team_id,
        key_id=owner.key_id,
    )


async def test_an_owner_sees_its_files_and_no_one_else_does(storage: SqlStorage) -> None:
    files = storage.files
    mine = record("file-a", ALICE)
    assert await files.add(mine, quota_bytes=None, now=1000)
    assert await files.add(record("file-t", TEAM), quota_bytes=None, now=1000)
    assert await files.add(record("file-m", MASTER), quota_bytes=None, now=1000)
    assert await files.get("file-a", ALICE, now=1000) == mine
    assert await files.get("file-a", ALICE_OTHER_KEY, now=1000) == mine  # the user's keys
    assert await files.get("file-a", TEAM, now=1000) is None
    assert await files.get("file-t", FileOwner(None, "t-data", "k-sa-2"), now=1000) is not None
    assert await files.get("file-t", ALICE, now=1000) is None
    assert await files.get("file-m", MASTER, now=1000) is not None
    assert await files.get("file-m", FileOwner(None, None, "k-other"), now=1000) is None
    assert await files.get("file-a", MASTER, now=1000) is None


async def test_expired_files_are_gone_for_their_owner_and_listed_for_cleanup(
    storage: SqlStorage,
) -> None:
    files = storage.files
    await files.add(record("file-x", ALICE, expires=2000), quota_bytes=None, now=1000)
    await files.add(record("file-y", ALICE, expires=3000), quota_bytes=None, now=1000)
    await files.add(record("file-z", ALICE), quota_bytes=None, now=1000)
    assert await files.get("file-x", ALICE, now=1999) is not None
    assert await files.get("file-x", ALICE, now=2000) is None
    assert await files.used_bytes(ALICE, now=2500) == 20
    assert [r.id for r in await files.expired(now=2500, limit=10)] == ["file-x"]
    assert [r.id for r in await files.expired(now=5000, limit=1)] == ["file-x"]
    assert await files.delete("file-x")
    assert not await files.delete("file-x")
    assert [r.id for r in await files.expired(now=5000, limit=10)] == ["file-y"]


async def test_pages_in_both_orders_with_a_cursor_and_a_purpose(storage: SqlStorage) -> None:
    files = storage.files
    for i, created in enumerate([100, 200, 200, 300]):
        purpose = "vision" if i == 3 else "batch"
        await files.add(
            record(f"file-{i}", ALICE, created=created, purpose=purpose),
            quota_bytes=None,
            now=100,
        )
    await files.add(record("file-t", TEAM, created=150), quota_bytes=None, now=100)

    async def ids(**kw: object) -> list[str]:
        args: dict[str, object] = {"after": None, "limit": 10, "descending": True}
        args |= kw
        return [r.id for r in await files.page(ALICE, now=100, purpose=None, **args)]  # type: ignore[arg-type]

    assert await ids() == ["file-3", "file-2", "file-1", "file-0"]
    assert await ids(descending=False) == ["file-0", "file-1", "file-2", "file-3"]
    first = await files.page(ALICE, now=100, after=None, limit=2, descending=True, purpose=None)
    assert [r.id for r in first] == ["file-3", "file-2"]
    assert await ids(after=first[-1]) == ["file-1", "file-0"]  # a tie on created_at
    assert await ids(after=first[-1], descending=False) == ["file-3"]
    batch = await files.page(ALICE, now=100, after=None, limit=10, descending=True, purpose="batch")
    assert [r.id for r in batch] == ["file-2", "file-1", "file-0"]


async def test_the_quota_holds_under_concurrent_uploads(storage: SqlStorage) -> None:
    files = storage.files
    assert await files.add(record("file-old", ALICE, size=40, expires=500), quota_bytes=100, now=0)
    # The expired file does not count; each of these would fit alone, four of them do.
    results = await asyncio.gather(
        *(
            files.add(record(f"file-{i}", ALICE_OTHER_KEY, size=25), quota_bytes=100, now=600)
            for i in range(8)
        )
    )
    assert sum(results) == 4
    assert await files.used_bytes(ALICE, now=600) == 100
    assert await files.add(record("file-team", TEAM, size=100), quota_bytes=100, now=600)
    assert not await files.add(record("file-big", TEAM, size=1), quota_bytes=100, now=600)
    assert await files.get("file-big", TEAM, now=600) is None
