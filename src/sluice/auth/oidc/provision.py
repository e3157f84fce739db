"""From a verified ID token to a gateway user: find the person by (issuer, subject), or link
or create their account (who the person is); then what their claims entitle them to
(``mapping.plan``: organisation, admin roles, teams, allowed domains), applied again on every
sign-in (``grants.apply``) and audited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from sluice.auth.oidc import grants
from sluice.auth.oidc.mapping import Plan, known_of, plan
from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.auth import OidcProviderConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.base import Grants, IdentityRecord, IdentityRepository
from sluice.tenancy.model import Directory, Governance, Org, User


class Users(grants.Changing, Protocol):
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

    async def create_org(self, actor: Principal, name: str, gov: Governance) -> Org: ...


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
        """The id of the organisation with this name (``default_org`` may name one), from
        the key cache's directory; the database is asked when the cache does not know it."""
        self._scim = scim

    async def directory(self) -> Directory:
        return await self._lookup.directory()

    async def identities(self, user_id: str | None = None) -> list[IdentityRecord]:
        """Every identity, or one user's."""
        if user_id is None:
            return await self._identities.all()
        return await self._identities.for_user(user_id)

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
        actor = Principal(key_id=f"sso:{idp}", name=f"sign-in with {idp}", is_admin=True)
        known = await self._identities.get(issuer, subject)
        user: User | None = None
        if known is not None:
            user = await self._active(known.user_id)
        elif (provisioned := await self._provisioned(issuer, subject, email, claims)) is not None:
            user = provisioned
        elif email is None:
            raise forbidden(
                f"{config.display_name} did not share your e-mail address "
                f"(claim {config.claims.email!r}); ask your administrator."
            )
        else:
            existing = await self._lookup.user_by_email(email)
            if existing is not None:
                user = await self._link(issuer, config, claims, existing)
        directory = await self._lookup.directory()
        the_plan = plan(
            idp,
            config,
            groups=groups,
            email=email,
            known=known_of(directory),
            has_org=user is not None and _keeps_org(user, config, directory),
        )
        if the_plan.refused is not None:
            raise forbidden(the_plan.refused)
        org = await self._org(the_plan, actor, directory)
        if user is None:
            assert email is not None
            if org is None:
                raise forbidden(
                    f"You signed in with {config.display_name}, but no organisation here "
                    "takes people from it yet. Ask an administrator to give you access."
                )
            user = await self._create(actor, config, claims, email, org)
        before = known.grants if known is not None and known.grants else Grants()
        record = IdentityRecord(issuer, subject, user.id, email, groups, now, now)
        write = signed_in(record) if known is not None else first_sign_in(record)
        await self._apply(actor, user, org=org, the_plan=the_plan, before=before, record=write)
        return user.id

    async def _apply(
        self,
        actor: Principal,
        user: User,
        *,
        org: Org | None,
        the_plan: Plan,
        before: Grants,
        record: grants.Record,
    ) -> Grants:
        """``grants.apply`` to what exists now, recording the sign-in on the identity in the
        same unit of work; when another sign-in made a team this one meant to make (a 409,
        nothing written), once more."""
        for attempt in range(2):
            try:
                return await grants.apply(
                    self._users,
                    actor,
                    user=user,
                    org=org,
                    plan=the_plan,
                    before=before,
                    directory=await self._lookup.directory(),
                    now=self._clock.now(),
                    record=record,
                    identities=self._identities,
                )
            except GatewayError as exc:
                if exc.status != 409 or attempt:
                    raise
        raise AssertionError("unreachable")

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
        self,
        actor: Principal,
        config: OidcProviderConfig,
        claims: Mapping[str, Any],
        email: str,
        org: Org,
    ) -> User:
        name = _text(claims.get(config.claims.name)) or email
        return await self._users.create_user(
            actor,
            email=email,
            name=name[:200],
            org_id=org.id,
            team_id=None,
            max_keys=None,
            gov=Governance(),
        )

    async def _org(self, the_plan: Plan, actor: Principal, directory: Directory) -> Org | None:
        """The plan's organisation, by id or name; created when the plan says so (a sign-in
        that raced another to create it finds the other's)."""
        wanted = the_plan.org
        if wanted is None:
            return None
        org = await self._lookup.get_org(wanted)
        if org is None:
            org_id = self._org_named(wanted)
            org = await self._lookup.get_org(org_id) if org_id is not None else None
        if org is None:  # made moments ago elsewhere: the cache has not heard of it yet
            org = next((o for o in directory.orgs if o.name == wanted), None)
        if org is None and the_plan.create_org:
            try:
                org = await self._users.create_org(actor, wanted, Governance())
            except GatewayError:
                orgs = (await self._lookup.directory()).orgs
                org = next((o for o in orgs if o.name == wanted), None)
        return org


def signed_in(record: IdentityRecord) -> grants.Record:
    """A known identity's sign-in: its time, claims and what the groups hold now."""

    async def write(identities: IdentityRepository, held: Grants) -> None:
        await identities.signed_in(
            record.issuer,
            record.subject,
            at=record.last_sign_in_at,
            email=record.email,
            groups=record.groups,
            grants=held,
        )

    return write


def first_sign_in(record: IdentityRecord) -> grants.Record:
    """A new identity, linked to its user. Another sign-in of the same person that linked it
    first is a 403 (sign in again), and the unit of work this runs in rolls back: looked up
    before inserting, so the insert's unique violation, which aborts a PostgreSQL transaction,
    is only met when the other sign-in commits in between (``create`` then says ``False``)."""

    async def write(identities: IdentityRepository, held: Grants) -> None:
        first = replace(record, grants=held)
        if await identities.get(record.issuer, record.subject) is not None or not (
            await identities.create(first)
        ):
            raise forbidden("This sign-in raced another one for the same person; sign in again.")

    return write


def _keeps_org(user: User, config: OidcProviderConfig, directory: Directory) -> bool:
    """An existing account that the groups map to no organisation keeps signing in: when it
    is in one already, or when this IdP maps no groups to organisations at all."""
    rules = config.provisioning
    if not rules.orgs and not rules.org_rules:
        return True
    teams = {t.id for t in directory.teams}
    return any(m.user_id == user.id and m.team_id in teams for m in directory.memberships)


def _text(value: Any) -> str | None:
    return value.strip()[:320] or None if isinstance(value, str) else None


def _groups(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(g)[:200] for g in value if isinstance(g, str | int))[:500]
    return ()
