"""Terms of service (``auth.terms``): people accept the current version, admins see who
accepted what.

An acceptance is written with its audit entry in one unit and moves the key-change counter,
so every process reloads its key cache, whose principals carry whether their owner still has
to accept (the data plane never asks the database).
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.terms import TermsConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.base import TermsAcceptance, TermsRepository
from sluice.tenancy import rules
from sluice.tenancy.model import User
from sluice.tenancy.service import Tenancy
from sluice.tenancy.terms import TermsGate


@dataclass(frozen=True, slots=True)
class Accepted:
    """An acceptance with the person it belongs to (``None``: the user was deleted)."""

    acceptance: TermsAcceptance
    user: User | None


def terms_changed(current: str) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_BAD_REQUEST,
        f"the terms of service changed (now version {current}) while you read them; "
        "read the new version and accept it",
        status=409,
        code="terms_changed",
        param="version",
    )


class TermsService:
    def __init__(
        self,
        config: TermsConfig | None,
        repo: TermsRepository,
        tenancy: Tenancy,
        *,
        clock: Clock,
    ) -> None:
        self.current = config
        """The published terms; ``None``: no terms configured (nothing is gated)."""
        self._repo = repo
        self._tenancy = tenancy
        self._clock = clock

    async def gate(self) -> TermsGate | None:
        """Who accepted the current version (loaded with the directory by the key sync)."""
        terms = self.current
        if terms is None:
            return None
        accepted = await self._repo.accepted_by(terms.version)
        return TermsGate(terms.version, accepted, terms.exempt_admins)

    async def accepted_at(self, user_id: str) -> float | None:
        """When ``user_id`` accepted the current version; ``None``: not yet (or no terms)."""
        terms = self.current
        if terms is None:
            return None
        rows = await self._repo.list(version=terms.version, user_id=user_id)
        return rows[0].accepted_at if rows else None

    async def accept(self, actor: Principal, version: str) -> bool:
        """The signed-in person accepts ``version``, which must be the current one (a page
        left open across a new version is refused with 409 ``terms_changed``). Audited as
        ``terms.accept``; ``False`` when they had accepted it already."""
        terms = self.current
        if terms is None:
            raise rules.not_found("terms of service", version)
        if actor.user_id is None:
            raise rules.forbidden("only a person accepts the terms of service")
        if version != terms.version:
            raise terms_changed(terms.version)
        if await self.accepted_at(actor.user_id) is not None:
            return False
        entry = self._tenancy.entry(
            actor,
            "terms.accept",
            ("user", actor.user_id),
            org_id=actor.org_id,
            after={"version": version},
        )
        async with self._tenancy.change(entry) as unit:
            await unit.terms.accept(actor.user_id, version, at=self._clock.now())
        return True

    async def acceptances(
        self, actor: Principal, *, version: str | None = None, user_id: str | None = None
    ) -> list[Accepted]:
        """Who accepted what, newest first: admins see everyone, org admins the people they
        may see; one version and/or one user when given."""
        if not actor.is_admin and not actor.org_admin_of:
            raise rules.forbidden("admins and org admins see who accepted the terms")
        directory = await self._tenancy.directory()
        users = {u.id: u for u in directory.users}
        out = []
        for row in await self._repo.list(version=version, user_id=user_id):
            user = users.get(row.user_id)
            if actor.is_admin or (
                user is not None and await self._tenancy.may_see_user(actor, user, directory)
            ):
                out.append(Accepted(row, user))
        return out
