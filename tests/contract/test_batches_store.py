"""The batches storage over SQLite and PostgreSQL: leases are exclusive, an expired lease is
taken over, a result is written once, finalization belongs to one process."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sluice.storage.batches import LineOutcome, NewLine, Owner, StoredBatch
from sluice.storage.sql.repository import SqlStorage

NOW = 1_800_000_000.0


def _batch(batch_id: str, *, lines: int, user: str | None = "u1", at: float = NOW) -> StoredBatch:
    """A user's batch, or (``user=None``) a service account's of team ``t1``."""
    return StoredBatch(
        id=batch_id,
        endpoint="/v1/chat/completions",
        input_file_id="file-x",
        completion_window="24h",
        status="in_progress",
        created_at=at,
        expires_at=at + 86400,
        key_id="k1",
        user_id=user,
        team_id="t1",
        org_id=None,
        service_account_id=None if user else "sa1",
        total=lines,
        times={"in_progress_at": at},
    )


def _lines(n: int) -> list[NewLine]:
    return [NewLine(i, f"c{i}", '{"model": "m"}') for i in range(1, n + 1)]


async def test_two_claimers_never_get_the_same_line(storage: SqlStorage) -> None:
    repo = storage.batches
    await repo.create(_batch("batch_a", lines=40), _lines(40))

    async def claimer(owner: str) -> list[int]:
        got: list[int] = []
        while True:
            claimed = await repo.claim("batch_a", owner=owner, n=3, now=NOW, until=NOW + 60)
            if not claimed:
                return got
            got += [c.line for c in claimed]

    first, second = await asyncio.gather(claimer("p1"), claimer("p2"))
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == list(range(1, 41))


async def test_an_expired_lease_is_taken_over_and_a_result_is_written_once(
    storage: SqlStorage,
) -> None:
    repo = storage.batches
    await repo.create(_batch("batch_b", lines=2), _lines(2))
    [one, second] = await repo.claim("batch_b", owner="p1", n=5, now=NOW, until=NOW + 10)
    assert (one.line, one.claims, second.line) == (1, 1, 2)
    assert await repo.claim("batch_b", owner="p2", n=5, now=NOW + 5, until=NOW + 15) == []
    assert await repo.running("batch_b", now=NOW + 5) == 2
    taken = await repo.claim("batch_b", owner="p2", n=5, now=NOW + 11, until=NOW + 21)
    assert [(c.line, c.claims) for c in taken] == [(1, 2), (2, 2)]
    assert not await repo.finish("batch_b", 1, owner="p1", output="late", failed=False)
    assert await repo.finish("batch_b", 1, owner="p2", output='{"a": 1}', failed=False)
    assert not await repo.finish("batch_b", 1, owner="p2", output="again", failed=False)
    await repo.release("batch_b", 2, owner="p2")
    [again] = await repo.claim("batch_b", owner="p1", n=5, now=NOW + 12, until=NOW + 22)
    assert (again.line, again.claims) == (2, 2)  # the released claim was taken back
    assert await repo.finish("batch_b", 2, owner="p1", output='{"e": 1}', failed=True)
    batch = await repo.get("batch_b")
    assert batch is not None
    assert (batch.completed, batch.failed) == (1, 1)
    results = await repo.results("batch_b")
    assert [(r.line, r.output, r.failed) for r in results] == [
        (1, '{"a": 1}', False),
        (2, '{"e": 1}', True),
    ]


async def test_renew_keeps_a_lease(storage: SqlStorage) -> None:
    repo = storage.batches
    await repo.create(_batch("batch_r", lines=1), _lines(1))
    await repo.claim("batch_r", owner="p1", n=1, now=NOW, until=NOW + 10)
    await repo.renew("p1", until=NOW + 100)
    assert await repo.claim("batch_r", owner="p2", n=1, now=NOW + 50, until=NOW + 60) == []


async def test_finalization_belongs_to_one_process_until_its_lease_expires(
    storage: SqlStorage,
) -> None:
    repo = storage.batches
    await repo.create(_batch("batch_f", lines=1), _lines(1))
    assert await repo.finalize("batch_f", owner="p1", now=NOW, until=NOW + 10)
    assert not await repo.finalize("batch_f", owner="p2", now=NOW + 5, until=NOW + 15)
    assert await repo.finalize("batch_f", owner="p2", now=NOW + 11, until=NOW + 21)
    assert not await repo.end(
        "batch_f", owner="p1", status="completed", output_file_id="f", error_file_id=None,
        failed=0, at=NOW + 12,
    )  # fmt: skip
    assert await repo.end(
        "batch_f", owner="p2", status="completed", output_file_id="file-o",
        error_file_id=None, failed=0, at=NOW + 12,
    )  # fmt: skip
    batch = await repo.get("batch_f")
    assert batch is not None
    assert (batch.status, batch.output_file_id) == ("completed", "file-o")
    assert batch.times["finalizing_at"] == NOW
    assert batch.times["completed_at"] == NOW + 12


async def test_owners_pages_counts_and_cancel(storage: SqlStorage) -> None:
    repo = storage.batches
    for i in range(3):
        await repo.create(_batch(f"batch_u{i}", lines=1, at=NOW + i), _lines(1))
    await repo.create(_batch("batch_t", lines=1, user=None, at=NOW + 9), _lines(1))
    mine = Owner(user_id="u1")
    assert [b.id for b in await repo.page(mine, after=None, limit=2)] == ["batch_u2", "batch_u1"]
    assert [b.id for b in await repo.page(mine, after="batch_u1", limit=5)] == ["batch_u0"]
    assert [b.id for b in await repo.page(Owner(team_id="t1"), after=None, limit=9)] == ["batch_t"]
    assert len(await repo.page(Owner(all=True), after=None, limit=9)) == 4
    assert await repo.count_active(mine) == 3
    assert await repo.cancel("batch_u0", at=NOW + 20)
    assert not await repo.cancel("batch_u0", at=NOW + 21)
    cancelled = await repo.get("batch_u0")
    assert cancelled is not None
    assert (cancelled.status, cancelled.ending) == ("cancelling", "cancelled")
    assert cancelled.times["cancelling_at"] == NOW + 20
    assert await repo.claim("batch_u0", owner="p1", n=5, now=NOW, until=NOW + 9) == []
    assert await repo.update("batch_u1", where=("in_progress",), paused="budget", resume_at=5.0)
    paused = await repo.get("batch_u1")
    assert paused is not None
    assert (paused.paused, paused.resume_at) == ("budget", 5.0)
    assert not await repo.update("batch_u0", where=("in_progress",), paused="budget")


async def test_a_delegated_batch_is_held_by_one_process_and_its_results_written_once(
    storage: SqlStorage,
) -> None:
    repo = storage.batches
    made = replace(_batch("batch_dl", lines=3), delegate="up/chat")
    await repo.create(made, _lines(3))
    got = await repo.get("batch_dl")
    assert got is not None
    assert got.delegate == "up/chat"
    assert await repo.hold("batch_dl", owner="p1", now=NOW, until=NOW + 10)
    assert not await repo.hold("batch_dl", owner="p2", now=NOW + 5, until=NOW + 15)
    assert await repo.hold("batch_dl", owner="p1", now=NOW + 5, until=NOW + 15)  # renewed
    assert [x.line for x in await repo.pending("batch_dl")] == [1, 2, 3]
    outcomes = [LineOutcome(1, '{"a": 1}', False), LineOutcome(2, '{"b": 2}', True)]
    assert not await repo.write_lines("batch_dl", owner="p2", outcomes=outcomes)
    assert await repo.write_lines(
        "batch_dl", owner="p1", outcomes=outcomes, upstream_status="collected"
    )
    assert await repo.write_lines("batch_dl", owner="p1", outcomes=outcomes)  # no recount
    batch = await repo.get("batch_dl")
    assert batch is not None
    assert (batch.completed, batch.failed, batch.upstream_status) == (1, 1, "collected")
    assert [x.line for x in await repo.pending("batch_dl")] == [3]
    # p1 crashed: its lease expires and p2 takes the batch over; a stopping p2 gives it back.
    assert await repo.hold("batch_dl", owner="p2", now=NOW + 16, until=NOW + 30)
    await repo.release_all("p2")
    assert await repo.hold("batch_dl", owner="p3", now=NOW + 17, until=NOW + 30)
    assert await repo.update(
        "batch_dl", where=("in_progress",), upstream_id="b_up", reservation={"id": "r"}
    )
    stored = await repo.get("batch_dl")
    assert stored is not None
    assert (stored.upstream_id, stored.reservation) == ("b_up", {"id": "r"})
