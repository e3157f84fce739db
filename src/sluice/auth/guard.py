"""The bad-key guard: client addresses that keep presenting invalid keys are refused.

Off unless ``SLUICE_BAD_KEY_MAX_FAILURES`` is set. On, every key check with a presented but
invalid key (unknown, wrong secret, revoked, expired) counts against the client address
(:mod:`sluice.auth.addresses`); an address with that many failures within
``SLUICE_BAD_KEY_WINDOW_S`` gets 429 with ``Retry-After`` before its key is looked at, until
the oldest failure leaves the window. A request without a key is not counted: it costs
nothing to refuse and guesses nothing. Valid keys from other addresses are unaffected.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from sluice.auth.addresses import ClientAddresses
from sluice.auth.throttle import FailureThrottle
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError
from sluice.settings import Settings

log = logging.getLogger("sluice.auth")


class BadKeyGuard:
    def __init__(self, throttle: FailureThrottle, addresses: ClientAddresses) -> None:
        self._throttle = throttle
        self._addresses = addresses

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> BadKeyGuard | None:
        """The guard the settings ask for; ``None`` when it is off."""
        if settings.bad_key_max_failures <= 0:
            return None
        throttle = FailureThrottle(
            clock,
            max_failures=settings.bad_key_max_failures,
            window_s=settings.bad_key_window_s,
        )
        return cls(throttle, ClientAddresses(settings.trusted_proxies))

    def check(self, scope: Mapping[str, Any]) -> None:
        """Raise 429 when the request's address is being refused (cheap while none is)."""
        if not self._throttle.any_limited():
            return
        wait = self._throttle.retry_after_s((self._addresses.of(scope),))
        if wait is not None:
            seconds = math.ceil(wait)
            raise GatewayError(
                ErrorKind.POLICY_RATE_LIMITED,
                f"too many requests with invalid API keys from this address; retry in {seconds} s",
                code="too_many_invalid_keys",
                retry_after_s=seconds,
            )

    def failed(self, scope: Mapping[str, Any]) -> None:
        """Count an invalid key presented by the request's address."""
        address = self._addresses.of(scope)
        if self._throttle.failed((address,)):
            log.warning("refusing client %s for a while: too many invalid API keys", address)
