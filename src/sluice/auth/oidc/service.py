"""Single sign-on as one control-plane service: the sign-in flow of every configured IdP,
provisioning, and where sign-out sends the browser. Built once by the lifespan and handed to
the console (like every control-plane service)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import aiohttp

from sluice.auth.oidc.login import OidcLogin
from sluice.auth.oidc.mapping import Plan, dry_run
from sluice.auth.oidc.metadata import IdentityProvider
from sluice.auth.oidc.provision import Provisioner, ScimAccounts, UserLookup, Users
from sluice.auth.oidc.transactions import transaction_store
from sluice.clock import Clock
from sluice.config.auth import AuthConfig
from sluice.errors import GatewayError
from sluice.storage.base import IdentityRecord, IdentityRepository

if TYPE_CHECKING:
    from redis.asyncio import Redis

METHOD_PREFIX = "oidc:"
"""A console session opened through IdP ``x`` records the method ``oidc:x``."""


@dataclass(frozen=True, slots=True)
class SignIns:
    """How a person signs in, for the admin user list."""

    source: str
    """``local`` (no identity provider), else the IdP's name (or issuer, if no longer
    configured); several joined by ``, ``."""
    last_sign_in_at: float | None = None
    """The latest sign-in through an IdP."""
    groups: tuple[str, ...] = ()
    """The groups claim at that sign-in."""


LOCAL = SignIns("local")


class SsoService:
    def __init__(self, login: OidcLogin, provisioner: Provisioner) -> None:
        self.login = login
        self.provisioner = provisioner

    @classmethod
    def build(
        cls,
        auth: AuthConfig,
        *,
        session: aiohttp.ClientSession,
        clock: Clock,
        redis: Redis | None,
        users: Users,
        lookup: UserLookup,
        identities: IdentityRepository,
        org_named: Callable[[str], str | None],
        scim: ScimAccounts | None = None,
    ) -> SsoService:
        """``redis``: keeps sign-in transactions when the process shares state through it."""
        providers = {
            name: IdentityProvider(name, config, session=session, clock=clock)
            for name, config in auth.oidc.items()
        }
        return cls(
            OidcLogin(providers, transaction_store(clock, redis), clock),
            Provisioner(users, lookup, identities, clock, org_named=org_named, scim=scim),
        )

    async def check(self, idp: str, *, groups: tuple[str, ...], email: str | None) -> Plan:
        """The dry run: what a newcomer with these claims would map to now."""
        configs = {name: p.config for name, p in self.login.providers.items()}
        directory = await self.provisioner.directory()
        return dry_run(configs, idp, groups=groups, email=email, directory=directory)

    async def sign_ins(self) -> dict[str, SignIns]:
        """User id → how they sign in (users without an identity are absent: ``LOCAL``)."""
        found: dict[str, list[IdentityRecord]] = {}
        for record in await self.provisioner.identities():
            found.setdefault(record.user_id, []).append(record)
        return {user_id: self._summary(records) for user_id, records in found.items()}

    async def sign_ins_of(self, user_id: str) -> SignIns:
        records = await self.provisioner.identities(user_id)
        return self._summary(records) if records else LOCAL

    def _summary(self, records: list[IdentityRecord]) -> SignIns:
        names = {p.config.issuer: name for name, p in self.login.providers.items()}
        latest = max(records, key=lambda r: r.last_sign_in_at)
        return SignIns(
            ", ".join(names.get(r.issuer, r.issuer) for r in records),
            latest.last_sign_in_at,
            latest.groups,
        )

    def idp_of(self, method: str) -> IdentityProvider | None:
        """The IdP a console session came from (its ``method``), if it still exists."""
        if not method.startswith(METHOD_PREFIX):
            return None
        return self.login.providers.get(method[len(METHOD_PREFIX) :])

    async def end_session_url(self, method: str, id_token: str | None, back: str) -> str | None:
        """Where to send the browser at sign-out to end the IdP's session too (RP-initiated
        logout), when the session came from an IdP that offers it and that answers now."""
        idp = self.idp_of(method)
        if idp is None:
            return None
        try:
            end = (await idp.discovery()).end_session_endpoint
        except GatewayError:
            return None  # the IdP is down: the console session ends anyway
        if end is None:
            return None
        query = {"client_id": idp.config.client_id, "post_logout_redirect_uri": back}
        if id_token:
            query["id_token_hint"] = id_token
        return end + ("&" if "?" in end else "?") + urlencode(query)
