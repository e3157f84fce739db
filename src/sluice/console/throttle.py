"""Sign-in throttling buckets: failures are counted per account and per client address by
the shared :class:`~sluice.auth.throttle.FailureThrottle` (see docs/console.md)."""

from __future__ import annotations


def buckets(email: str, client: str) -> tuple[str, str]:
    return f"account:{email.strip().lower()}", f"client:{client}"
