from __future__ import annotations

import pytest

from sluice.auth import keys
from sluice.auth.cache import KeyCache, token_from_headers
from sluice.auth.principal import MASTER
from sluice.clock import FakeClock
from sluice.errors import ErrorKind, GatewayError


def _record(token: str, **kw: object) -> keys.KeyRecord:
    public_id = keys.public_id_of(token)
    assert public_id is not None
    return keys.KeyRecord(
        id=f"key_{public_id}",
        public_id=public_id,
        name="t",
        key_hash=keys.hash_key(token),
        preview=keys.preview(token),
        created_at=0.0,
        **kw,  # type: ignore[arg-type]
    )


def test_key_format_is_recognisable_and_parseable() -> None:
    new = keys.generate()
    assert new.secret.startswith("sk-slc-")
    assert keys.public_id_of(new.secret) == new.public_id
    assert new.key_id == f"key_{new.public_id}"
    assert keys.generate().secret != new.secret
    preview = keys.preview(new.secret)
    assert preview.startswith(f"sk-slc-{new.public_id}") and preview.endswith(new.secret[-4:])
    assert new.secret[len(preview) - 7 : -4] not in preview


@pytest.mark.parametrize(
    "token",
    ["", "sk-slc-", "sk-other-abc", "sk-slc-short-x", "sk-slc-" + "a" * 12 + "_" + "b" * 40],
)
def test_malformed_keys_have_no_public_id(token: str) -> None:
    assert keys.public_id_of(token) is None


def test_only_the_hash_is_kept_and_it_matches() -> None:
    new = keys.generate()
    record = _record(new.secret)
    assert new.secret not in repr(record)
    assert keys.matches(new.secret, record.key_hash)
    wrong = new.secret[:-1] + ("x" if new.secret[-1] != "x" else "y")  # 1 in 62 ends in x
    assert not keys.matches(wrong, record.key_hash)


def _kind(exc: pytest.ExceptionInfo[GatewayError]) -> tuple[ErrorKind, int, str]:
    return exc.value.kind, exc.value.status, exc.value.message


def test_cache_authenticates_valid_and_refuses_the_rest() -> None:
    clock = FakeClock(start=1000.0)
    good, revoked, expiring = keys.generate(), keys.generate(), keys.generate()
    cache = KeyCache(clock, master_hash=keys.hash_key("root-secret"))
    cache.replace(
        [
            _record(good.secret, models=("mock-gpt",)),
            _record(revoked.secret, revoked_at=999.0),
            _record(expiring.secret, expires_at=1010.0),
        ],
        version=3,
    )
    principal = cache.authenticate(good.secret)
    assert principal.key_id == good.key_id
    assert principal.may_use("mock-gpt") and not principal.may_use("mock-embed")
    assert cache.authenticate(expiring.secret).key_id == expiring.key_id
    assert cache.authenticate("root-secret") is MASTER

    with pytest.raises(GatewayError) as info:
        cache.authenticate(revoked.secret)
    assert _kind(info) == (ErrorKind.CALLER_UNAUTHENTICATED, 401, "this API key has been revoked")

    clock.advance(10)
    with pytest.raises(GatewayError, match="expired"):
        cache.authenticate(expiring.secret)

    forged = good.secret[:-1] + ("A" if good.secret[-1] != "A" else "B")
    for token in (forged, keys.generate().secret, "nonsense", "root-secret!"):
        with pytest.raises(GatewayError, match="invalid API key"):
            cache.authenticate(token)
    with pytest.raises(GatewayError, match="missing API key"):
        cache.authenticate(None)


def test_revocation_through_put_is_immediate() -> None:
    clock = FakeClock()
    new = keys.generate()
    cache = KeyCache(clock, master_hash=None)
    record = _record(new.secret)
    cache.put(record)
    assert cache.authenticate(new.secret).key_id == record.id
    cache.put(_record(new.secret, revoked_at=clock.now()))
    with pytest.raises(GatewayError, match="revoked"):
        cache.authenticate(new.secret)


def test_a_proven_key_is_not_hashed_again_but_a_rotation_still_refuses_it() -> None:
    clock = FakeClock()
    old, cache = keys.generate(), KeyCache(clock, master_hash=keys.hash_key("root-secret"))
    cache.put(_record(old.secret))
    calls: list[str] = []
    real = keys.hash_key

    def counting(token: str) -> str:
        calls.append(token)
        return real(token)

    keys.hash_key = counting  # type: ignore[assignment]
    try:
        for _ in range(3):
            cache.authenticate(old.secret)
            assert cache.authenticate("root-secret") is MASTER
        assert calls == [old.secret, "root-secret"]
        new = keys.generate(old.public_id)  # rotated, no grace period
        cache.put(_record(new.secret))
        with pytest.raises(GatewayError, match="invalid API key"):
            cache.authenticate(old.secret)
        assert cache.authenticate(new.secret).key_id == f"key_{old.public_id}"
    finally:
        keys.hash_key = real  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        (b"Bearer sk-1", None, "sk-1"),
        (b"bearer   sk-2 ", None, "sk-2"),
        (None, b"sk-3", "sk-3"),
        (b"Basic abc", b"sk-4", "sk-4"),
        (b"Bearer ", None, None),
        (None, None, None),
    ],
)
def test_token_from_headers(
    authorization: bytes | None, x_api_key: bytes | None, expected: str | None
) -> None:
    assert token_from_headers(authorization, x_api_key) == expected
