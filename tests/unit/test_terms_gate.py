"""The terms-of-service gate on the hot path: the key cache refuses a proven key whose owner
has not accepted the current version (403 ``terms_not_accepted``), from the principal it
resolved when it loaded, never from the database."""

from __future__ import annotations

import pytest

from sluice.auth import keys
from sluice.auth.addresses import ClientAddresses
from sluice.auth.cache import KeyCache
from sluice.auth.guard import BadKeyGuard
from sluice.auth.throttle import FailureThrottle
from sluice.clock import FakeClock
from sluice.errors import ErrorKind, GatewayError
from sluice.tenancy.model import Directory, ServiceAccount, Team, User
from sluice.tenancy.resolve import DirectoryIndex
from sluice.tenancy.terms import TermsGate

SCOPE = {"type": "http", "client": ("198.51.100.7", 5000), "headers": []}


def _record(token: str, **owner: str) -> keys.KeyRecord:
    public_id = keys.public_id_of(token)
    assert public_id is not None
    return keys.KeyRecord(
        id=f"key_{public_id}",
        public_id=public_id,
        name="t",
        key_hash=keys.hash_key(token),
        preview=keys.preview(token),
        created_at=0.0,
        **owner,  # type: ignore[arg-type]
    )


def _cache(gate: TermsGate | None) -> tuple[KeyCache, dict[str, str]]:
    directory = Directory(
        orgs=[],
        teams=[Team("team_1", "org_1", "t", 0.0)],
        users=[
            User("user_ada", "ada@x.org", "Ada", 0.0),
            User("user_eve", "eve@x.org", "Eve", 0.0),
            User("user_root", "root@x.org", "Root", 0.0, is_admin=True),
        ],
        memberships=[],
        org_roles=[],
        service_accounts=[ServiceAccount("sa_ci", "team_1", "ci", 0.0)],
    )
    secrets = {name: keys.generate().secret for name in ("ada", "eve", "root", "ci")}
    records = [
        _record(secrets["ada"], user_id="user_ada"),
        _record(secrets["eve"], user_id="user_eve"),
        _record(secrets["root"], user_id="user_root"),
        _record(secrets["ci"], service_account_id="sa_ci"),
    ]
    clock = FakeClock(start=100.0)
    guard = BadKeyGuard(FailureThrottle(clock, max_failures=2, window_s=60), ClientAddresses())
    cache = KeyCache(clock, master_hash=keys.hash_key("root-secret"), guard=guard)
    cache.replace(records, version=1, index=DirectoryIndex.build(directory, terms=gate))
    return cache, secrets


def test_no_terms_lets_everyone_in() -> None:
    cache, secrets = _cache(None)
    for secret in secrets.values():
        assert cache.authenticate(secret).terms_pending is None


def test_only_owners_who_have_not_accepted_are_refused() -> None:
    cache, secrets = _cache(TermsGate("v2", frozenset({"user_ada"}), exempt_admins=True))
    assert cache.authenticate(secrets["ada"]).user_id == "user_ada"
    assert cache.authenticate(secrets["root"]).is_admin  # exempt
    assert cache.authenticate(secrets["ci"]).service_account_id == "sa_ci"  # no person
    assert cache.authenticate("root-secret").is_admin  # the master key is no person
    with pytest.raises(GatewayError) as refused:
        cache.authenticate(secrets["eve"])
    error = refused.value
    assert (error.kind, error.status, error.code) == (
        ErrorKind.POLICY_TERMS_NOT_ACCEPTED,
        403,
        "terms_not_accepted",
    )
    assert "version v2" in error.message
    # A key an IdP token maps to is refused the same way.
    with pytest.raises(GatewayError, match="terms_not_accepted"):
        cache.active_principal(f"key_{keys.public_id_of(secrets['eve'])}")
    assert cache.active_principal(f"key_{keys.public_id_of(secrets['ada'])}") is not None


def test_admins_accept_too_unless_exempt() -> None:
    cache, secrets = _cache(TermsGate("v2", frozenset(), exempt_admins=False))
    with pytest.raises(GatewayError, match="terms_not_accepted"):
        cache.authenticate(secrets["root"])


def test_a_wrong_secret_is_401_and_a_refusal_for_terms_is_no_bad_key() -> None:
    cache, secrets = _cache(TermsGate("v2", frozenset(), exempt_admins=True))
    forged = secrets["eve"][:-1] + ("A" if secrets["eve"][-1] != "A" else "B")
    with pytest.raises(GatewayError) as wrong:
        cache.authenticate(forged)
    assert wrong.value.status == 401
    # The owner's right key, refused for the terms, many times: the address is not throttled.
    for _ in range(5):
        with pytest.raises(GatewayError, match="terms_not_accepted"):
            cache.authenticate(secrets["eve"], SCOPE)
    assert cache.authenticate(secrets["ci"], SCOPE).service_account_id == "sa_ci"
