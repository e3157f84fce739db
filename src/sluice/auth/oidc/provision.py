"""From a verified ID token to a gateway user: find the person by (issuer, subject), or link
or create their account, then record the sign-in.

Today's rule is the minimal one: a first sign-in joins ``default_org`` as a member (of its
default team). Group mapping, admin groups and allowed domains belong in :meth:`provision`'s
second half (what the claims entitle the person to), applied again on every sign-in; the
first half (who the person is) stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.auth import OidcProviderConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.base import IdentityRecord, IdentityRepository
from sluice.tenancy.model import Directory, Governance, Org, User


class Users(Protocol):
    """What provisioning needs of the tenancy service (users are created through it, so
    creation is audited and the key cache learns of it)."""

    async def create_user(
        self,
        actor: Principal,
        *,
        email: str,
        name: str,
        org_id: str | None,
        team_id: str | None,
        max_keys: int | None,
        gov: Governance,
    ) -> User: ...


class ScimAccounts(Protocol):
    """Users an identity provider provisioned through SCIM ahead of their first sign-in."""

    async def provisioned_user(self, *, subject: str, verified_email: str | None) -> str | None:
        """The id of the SCIM user whose ``externalId`` is ``subject``, else of the one
        whose ``userName`` is ``verified_email``; ``None`` when there is none."""
        ...


class UserLookup(Protocol):
    async def get_user(self, user_id: str) -> User | None: ...

    async def user_by_email(self, email: str) -> User | None: ...

    async def get_org(self, org_id: str) -> Org | None: ...

    async def directory(self) -> Directory: ...


def forbidden(message: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_FORBIDDEN, message, code="sso_refused")


class Provisioner:
    def __init__(
        self,
        users: Users,
        lookup: UserLookup,
        identities: IdentityRepository,
        clock: Clock,
        *,
        org_named: Callable[[str], str | None] = lambda name: None,
        scim: ScimAccounts | None = None,
    ) -> None:
        self._users = users
        self._lookup = lookup
        self._identities = identities
        self._clock = clock
        self._org_named = org_named
        self._scim = scim
        """The id of the organisation with this name (``default_org`` may name one), from
        the key cache's directory; the database is asked when the cache does not know it."""

    async def provision(
        self, idp: str, config: OidcProviderConfig, claims: Mapping[str, Any]
    ) -> str:
        """The user id to open a console session for; raises a 403 ``GatewayError`` with a
        sentence for the person when they may not sign in."""
        issuer, subject = claims.get("iss"), claims.get("sub")
        if not isinstance(issuer, str) or not isinstance(subject, str) or not subject:
            raise forbidden("The identity provider's answer names no subject.")
        email = _text(claims.get(config.claims.email))
        groups = _groups(claims.get(config.claims.groups))
        now = self._clock.now()
        known = await self._identities.get(issuer, subject)
        if known is not None:
            user = await self._active(known.user_id)
            await self._identities.signed_in(issuer, subject, at=now, email=email, groups=groups)
            return user.id
        provisioned = await self._provisioned(issuer, subject, email, claims)
        if provisioned is not None:
            user = provisioned
        elif email is None:
            raise forbidden(
                f"{config.display_name} did not share your e-mail address "
                f"(claim {config.claims.email!r}); ask your administrator."
            )
        elif (existing := await self._lookup.user_by_email(email)) is not None:
            user = await self._link(issuer, config, claims, existing)
        else:
            user = await self._create(idp, config, claims, email)
        record = IdentityRecord(issuer, subject, user.id, email, groups, now, now)
        if not await self._identities.create(record):
            raise forbidden("This sign-in raced another one for the same person; sign in again.")
        return user.id

    async def _provisioned(
        self, issuer: str, subject: str, email: str | None, claims: Mapping[str, Any]
    ) -> User | None:
        """A first sign-in of a person SCIM provisioned: linked to that account when its
        ``externalId`` is the ``sub``, or its ``userName`` the IdP's verified e-mail, and
        no other identity of this issuer holds it (whatever ``link_verified_email`` says:
        the IdP made the account for this person)."""
        if self._scim is None:
            return None
        verified = email if claims.get("email_verified") is True else None
        user_id = await self._scim.provisioned_user(subject=subject, verified_email=verified)
        if user_id is None:
            return None
        if any(i.issuer == issuer for i in await self._identities.for_user(user_id)):
            raise forbidden(
                "Your account here is linked to another identity at this provider. "
                "Ask an administrator."
            )
        return await self._active(user_id)

    async def _active(self, user_id: str) -> User:
        user = await self._lookup.get_user(user_id)
        if user is None or user.disabled:
            raise forbidden("Your account here is disabled. Ask an administrator.")
        return user

    async def _link(
        self, issuer: str, config: OidcProviderConfig, claims: Mapping[str, Any], user: User
    ) -> User:
        """An account with the same e-mail exists: linked only when the config allows it,
        the IdP vouches for the address, and no other identity of this issuer holds it."""
        taken = any(i.issuer == issuer for i in await self._identities.for_user(user.id))
        if not config.link_verified_email or claims.get("email_verified") is not True or taken:
            raise forbidden(
                "An account with your e-mail address exists here but is not linked to your "
                f"{config.display_name} identity. Ask an administrator to link them, or sign "
                "in the way you did before."
            )
        return await self._active(user.id)

    async def _create(
        self, idp: str, config: OidcProviderConfig, claims: Mapping[str, Any], email: str
    ) -> User:
        org = await self._default_org(config)
        if org is None:
            raise forbidden(
                f"You signed in with {config.display_name}, but no organisation here takes "
                "people from it yet. Ask an administrator to give you access."
            )
        name = _text(claims.get(config.claims.name)) or email
        actor = Principal(key_id=f"sso:{idp}", name=f"sign-in with {idp}", is_admin=True)
        return await self._users.create_user(
            actor,
            email=email,
            name=name[:200],
            org_id=org.id,
            team_id=None,
            max_keys=None,
            gov=Governance(),
        )

    async def _default_org(self, config: OidcProviderConfig) -> Org | None:
        wanted = config.default_org
        if wanted is None:
            return None
        org = await self._lookup.get_org(wanted)
        if org is None:
            org_id = self._org_named(wanted)
            org = await self._lookup.get_org(org_id) if org_id is not None else None
        if org is None:  # made moments ago elsewhere: the cache has not heard of it yet
            orgs = (await self._lookup.directory()).orgs
            org = next((o for o in orgs if o.name == wanted), None)
        return org


def _text(value: Any) -> str | None:
    return value.strip()[:320] or None if isinstance(value, str) else None


def _groups(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(g)[:200] for g in value if isinstance(g, str | int))[:500]
    return ()
