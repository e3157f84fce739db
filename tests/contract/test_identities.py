"""Federated identities over SQLite and PostgreSQL: (issuer, subject) is the identity."""

from __future__ import annotations

from typing import Any

from sluice.storage.base import Grants, IdentityRecord


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


async def test_what_the_groups_granted_is_kept_per_identity(storage: Any) -> None:
    repo = storage.identities
    granted = Grants(True, ("org_1",), ("team_1", "team_2"))
    first = IdentityRecord("https://a", "1", "user_1", None, ("ops",), 100.0, 100.0, granted)
    assert await repo.create(first)
    assert (await repo.get("https://a", "1")).grants == granted
    # A sign-in that does not say what was granted leaves it; one that does replaces it.
    await repo.signed_in("https://a", "1", at=150.0, email=None, groups=("ops",))
    assert (await repo.get("https://a", "1")).grants == granted
    await repo.signed_in("https://a", "1", at=200.0, email=None, groups=(), grants=Grants())
    assert (await repo.get("https://a", "1")).grants == Grants()
    plain = IdentityRecord("https://b", "2", "user_2", None, (), 50.0, 50.0)
    assert await repo.create(plain)
    assert [(i.issuer, i.grants) for i in await repo.all()] == [
        ("https://b", None),
        ("https://a", Grants()),
    ]
