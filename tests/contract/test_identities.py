"""Federated identities over SQLite and PostgreSQL: (issuer, subject) is the identity."""

from __future__ import annotations

from typing import Any

from sluice.storage.base import IdentityRecord


async def test_an_identity_is_the_issuer_and_subject_pair(storage: Any) -> None:
    repo = storage.identities
    alice = IdentityRecord("https://a", "123", "user_1", "a@x.org", ("g1", "g2"), 100.0, 100.0)
    assert await repo.create(alice)
    # The same subject at another issuer is another person; the same pair is refused.
    other = IdentityRecord("https://b", "123", "user_2", "a@x.org", (), 101.0, 101.0)
    assert await repo.create(other)
    assert not await repo.create(IdentityRecord("https://a", "123", "user_3", None, (), 1, 1))

    assert await repo.get("https://a", "123") == alice
    assert (await repo.get("https://b", "123")).user_id == "user_2"
    assert await repo.get("https://a", "999") is None

    await repo.signed_in("https://a", "123", at=200.0, email="new@x.org", groups=("g3",))
    moved = await repo.get("https://a", "123")
    assert (moved.last_sign_in_at, moved.email, moved.groups) == (200.0, "new@x.org", ("g3",))
    assert moved.created_at == 100.0

    second = IdentityRecord("https://c", "u", "user_1", None, (), 150.0, 150.0)
    assert await repo.create(second)
    assert [i.issuer for i in await repo.for_user("user_1")] == ["https://a", "https://c"]
    assert await repo.for_user("nobody") == []
