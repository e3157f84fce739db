"""The failure throttle, the client-address resolver and the bad-key guard on a fake clock."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from sluice.auth.addresses import ClientAddresses
from sluice.auth.cache import KeyCache
from sluice.auth.guard import BadKeyGuard
from sluice.auth.keys import hash_key
from sluice.auth.throttle import FailureThrottle
from sluice.clock import FakeClock
from sluice.errors import ErrorKind, GatewayError
from sluice.settings import load_settings

MASTER = "sk-master-for-the-guard-test"


def _scope(peer: str, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 40000), "headers": headers}


# --- FailureThrottle ----------------------------------------------------------------------


def test_a_bucket_is_refused_at_the_limit_until_its_oldest_failure_leaves_the_window() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock, max_failures=3, window_s=60)
    assert not throttle.any_limited()
    assert [throttle.failed(("a",)) for _ in range(2)] == [False, False]
    clock.advance(10)
    assert throttle.retry_after_s(("a",)) is None
    assert throttle.failed(("a",)) is True  # the third: refused from now on
    assert throttle.any_limited()
    assert throttle.retry_after_s(("a",)) == pytest.approx(50)
    assert throttle.retry_after_s(("b",)) is None
    clock.advance(50)  # the first two failures left the window
    assert throttle.retry_after_s(("a",)) is None
    assert throttle.failed(("a",)) is False  # two in the window now
    assert throttle.failed(("a",)) is True


def test_refusals_end_by_themselves_and_the_table_empties() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock, max_failures=1, window_s=30)
    throttle.failed(("a",))
    throttle.failed(("b",))
    assert throttle.any_limited()
    clock.advance(30)
    assert not throttle.any_limited()
    assert throttle.retry_after_s(("a",)) is None


def test_a_refused_bucket_failing_again_is_refused_longer() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock, max_failures=2, window_s=60)
    throttle.failed(("a",))
    clock.advance(20)
    throttle.failed(("a",))
    assert throttle.retry_after_s(("a",)) == pytest.approx(40)
    clock.advance(5)
    throttle.failed(("a",))  # the window now starts at the second failure
    assert throttle.retry_after_s(("a",)) == pytest.approx(55)  # 20 + 60 - 25


def test_success_clears_only_its_bucket() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock, max_failures=1, window_s=60)
    throttle.failed(("account", "client"))
    throttle.succeeded("account")
    assert throttle.retry_after_s(("account",)) is None
    assert throttle.retry_after_s(("client",)) is not None


def test_the_table_is_bounded_under_a_flood_of_addresses() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock, max_failures=2, window_s=60, max_buckets=100)
    for i in range(1000):
        throttle.failed((f"10.0.{i // 256}.{i % 256}",))
    assert len(throttle) <= 100
    throttle.failed(("victim",))
    throttle.failed(("victim",))
    assert throttle.retry_after_s(("victim",)) is not None
    clock.advance(61)  # every bucket expired: they make room before anything is evicted
    for i in range(99):
        throttle.failed((f"new-{i}",))
    assert len(throttle) <= 100


# --- ClientAddresses ----------------------------------------------------------------------

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.1/32"))


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    addresses = ClientAddresses()
    assert addresses.of(_scope("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    addresses = ClientAddresses(PROXIES)
    assert addresses.of(_scope("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() -> None:
    addresses = ClientAddresses(PROXIES)
    # The client forged the first hop; the proxies appended the rest.
    scope = _scope("10.0.0.2", "6.6.6.6, 198.51.100.7, 192.168.1.1", "10.1.2.3")
    assert addresses.of(scope) == "198.51.100.7"
    assert addresses.of(_scope("10.0.0.2")) == "10.0.0.2"  # the proxy asks itself
    assert addresses.of(_scope("10.0.0.2", "10.9.9.9, 10.0.0.7")) == "10.9.9.9"


def test_ipv6_clients_count_by_their_64_and_odd_hops_are_bounded() -> None:
    addresses = ClientAddresses(PROXIES)
    a = addresses.of(_scope("2001:db8:1:2::10"))
    b = addresses.of(_scope("2001:db8:1:2:ffff::1"))
    assert a == b == "2001:db8:1:2::/64"
    assert addresses.of(_scope("::ffff:203.0.113.9")) == "203.0.113.9"
    assert addresses.of(_scope("10.0.0.2", "not-an-ip" * 20)) == ("not-an-ip" * 20)[:64]
    assert addresses.of({"type": "http", "client": None, "headers": []}) == "unknown"


# --- the guard on the key check -------------------------------------------------------------


def _cache(clock: FakeClock, **settings: Any) -> KeyCache:
    guard = BadKeyGuard.from_settings(load_settings(**settings), clock)
    return KeyCache(clock, master_hash=hash_key(MASTER), guard=guard)


def test_the_guard_is_off_by_default() -> None:
    clock = FakeClock()
    assert BadKeyGuard.from_settings(load_settings(), clock) is None
    keys = _cache(clock)
    for _ in range(50):
        with pytest.raises(GatewayError) as caught:
            keys.authenticate("sk-wrong", _scope("203.0.113.5"))
        assert caught.value.status == 401


def test_bad_keys_from_one_address_get_429_before_the_key_is_checked() -> None:
    clock = FakeClock()
    keys = _cache(clock, bad_key_max_failures=3, bad_key_window_s=60)
    attacker = _scope("203.0.113.5")
    for _ in range(3):
        with pytest.raises(GatewayError) as caught:
            keys.authenticate("sk-wrong", attacker)
        assert caught.value.kind is ErrorKind.CALLER_UNAUTHENTICATED
    with pytest.raises(GatewayError) as caught:
        keys.authenticate(MASTER, attacker)  # even a good key waits now
    assert caught.value.status == 429
    assert caught.value.code == "too_many_invalid_keys"
    assert caught.value.retry_after_s == 60
    assert keys.authenticate(MASTER, _scope("203.0.113.6")).is_admin
    assert keys.authenticate(MASTER).is_admin  # no scope: not an HTTP request
    clock.advance(60)
    assert keys.authenticate(MASTER, attacker).is_admin


def test_missing_keys_are_not_counted() -> None:
    clock = FakeClock()
    keys = _cache(clock, bad_key_max_failures=1)
    for _ in range(5):
        with pytest.raises(GatewayError) as caught:
            keys.authenticate(None, _scope("203.0.113.5"))
        assert caught.value.status == 401
    assert keys.authenticate(MASTER, _scope("203.0.113.5")).is_admin
