"""What SCIM remembers beside the tenancy records: which users and teams of the org it
manages, with the identity provider's ``externalId`` (and the user's structured name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class UserLink:
    user_id: str
    org_id: str
    external_id: str | None
    name: dict[str, Any] | None
    """The SCIM ``name`` object as the IdP sent it (``givenName``, ``familyName``, ...)."""
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class GroupLink:
    """A team that is a SCIM group: its members are the group's members."""

    team_id: str
    org_id: str
    external_id: str | None
    created_at: float
    updated_at: float


class ScimRepository(Protocol):
    """Every write joins the unit of work it is called on (``Unit.scim``)."""

    async def user_links(self, org_id: str) -> dict[str, UserLink]:
        """The org's SCIM users by user id."""
        ...

    async def group_links(self, org_id: str) -> dict[str, GroupLink]:
        """The org's SCIM groups by team id."""
        ...

    async def put_user(self, link: UserLink) -> None:
        """Insert or replace the link of ``link.user_id``."""
        ...

    async def put_group(self, link: GroupLink) -> None:
        """Insert or replace the link of ``link.team_id``."""
        ...

    async def delete_user(self, user_id: str) -> None: ...

    async def delete_group(self, team_id: str) -> None: ...
