"""Terms-of-service acceptances over SQLite and PostgreSQL: one row per user and version."""

from __future__ import annotations

from sluice.storage.base import TermsAcceptance
from sluice.storage.sql.repository import SqlStorage


async def test_an_acceptance_is_recorded_once_per_user_and_version(storage: SqlStorage) -> None:
    repo = storage.terms
    before = await storage.keys.version()
    assert await repo.accept("user_a", "2026-11", at=100.0)
    assert await storage.keys.version() == before + 1  # every process reloads its keys
    # Accepting again keeps the first time and moves nothing.
    assert not await repo.accept("user_a", "2026-11", at=150.0)
    assert await storage.keys.version() == before + 1
    assert await repo.accept("user_b", "2026-11", at=200.0)
    assert await repo.accept("user_a", "2026-12", at=300.0)

    assert await repo.accepted_by("2026-11") == {"user_a", "user_b"}
    assert await repo.accepted_by("2026-12") == {"user_a"}
    assert await repo.accepted_by("2027-01") == frozenset()

    assert await repo.list() == [
        TermsAcceptance("user_a", "2026-12", 300.0),
        TermsAcceptance("user_b", "2026-11", 200.0),
        TermsAcceptance("user_a", "2026-11", 100.0),
    ]
    assert [a.user_id for a in await repo.list(version="2026-11")] == ["user_b", "user_a"]
    assert await repo.list(user_id="user_a", version="2026-12") == [
        TermsAcceptance("user_a", "2026-12", 300.0)
    ]
    assert await repo.list(user_id="nobody") == []


async def test_an_acceptance_in_a_unit_commits_with_it_or_not_at_all(storage: SqlStorage) -> None:
    async with storage.unit() as unit:
        assert await unit.terms.accept("user_a", "v1", at=1.0)
    try:
        async with storage.unit() as unit:
            assert await unit.terms.accept("user_b", "v1", at=2.0)
            raise RuntimeError("the rest of the change failed")
    except RuntimeError:
        pass
    assert await storage.terms.accepted_by("v1") == {"user_a"}
