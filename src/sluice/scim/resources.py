"""SCIM Users and Groups as JSON (RFC 7643 §4): how a Sluice user or team looks to the
identity provider, and what a POST or PUT body (or a patched resource) asks for.

A User is a Sluice user of the org: ``userName`` is the e-mail address (``emails`` shows it
as the one work address), ``displayName`` (or ``name.formatted``, or given and family name)
is the user's name, ``active`` is the opposite of disabled. A Group is a team of the org;
its members are the team's members. Attributes Sluice does not keep (phone numbers, the
enterprise extension, ...) are accepted and ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from sluice.scim.errors import invalid_syntax, invalid_value
from sluice.scim.filter import field
from sluice.tenancy import bounds

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

USER_NAME_MAX_CHARS = 320
"""An e-mail address's longest form, as the tenancy service accepts it."""
TEXT_MAX_CHARS = bounds.NAME_MAX_CHARS
MEMBERS_MAX = 10_000
NAME_PARTS = ("formatted", "familyName", "givenName", "middleName", "honorificPrefix")
NAME_PARTS_ALL = (*NAME_PARTS, "honorificSuffix")

USER_ATTRIBUTES = frozenset(
    {"id", "externalid", "username", "name", "displayname", "emails", "active", "groups", "meta"}
)
GROUP_ATTRIBUTES = frozenset({"id", "externalid", "displayname", "members", "meta"})


@dataclass(frozen=True, slots=True)
class UserInput:
    user_name: str
    name: str
    """The Sluice user's name (from ``displayName``, ``name``, or ``userName``)."""
    structured: dict[str, str] | None
    external_id: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class GroupInput:
    display_name: str
    external_id: str | None
    members: tuple[str, ...]
    """User ids, each once, in the order given."""


def timestamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def with_meta(
    resource: dict[str, Any], *, kind: str, created: float, modified: float, location: str
) -> dict[str, Any]:
    """``resource`` with ``meta``; its ``version`` (the ETag) is a digest of the rest."""
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()
    resource["meta"] = {
        "resourceType": kind,
        "created": timestamp(created),
        "lastModified": timestamp(max(created, modified)),
        "location": location,
        "version": f'W/"{digest[:20]}"',
    }
    return resource


def _text(
    value: Any, param: str, *, required: bool = False, max_chars: int = TEXT_MAX_CHARS
) -> str | None:
    if value is None or value == "":
        if required:
            raise invalid_value(f"{param} is required")
        return None
    if not isinstance(value, str) or len(value) > max_chars or "\x00" in value:
        raise invalid_value(f"{param} must be text of 1 to {max_chars} characters")
    return value.strip() or None if not required else value.strip()


def _active(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):  # Entra sends "False"
        return value.lower() == "true"
    raise invalid_value("active must be true or false")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_syntax("the body must be a JSON object")
    return body


def user_input(body: Any) -> UserInput:
    data = _object(body)
    user_name = _text(
        field(data, "username"), "userName", required=True, max_chars=USER_NAME_MAX_CHARS
    )
    assert user_name
    name_obj = field(data, "name")
    structured: dict[str, str] | None = None
    if name_obj is not None:
        if not isinstance(name_obj, dict):
            raise invalid_value("name must be an object (givenName, familyName, formatted)")
        structured = {}
        for part in NAME_PARTS_ALL:
            text = _text(field(name_obj, part.lower()), f"name.{part}")
            if text is not None:
                structured[part] = text
        structured = structured or None
    display = _text(field(data, "displayname"), "displayName")
    joined = " ".join(
        p for p in ((structured or {}).get("givenName"), (structured or {}).get("familyName")) if p
    )
    name = display or (structured or {}).get("formatted") or joined or user_name
    return UserInput(
        user_name=user_name,
        name=name[:TEXT_MAX_CHARS],
        structured=structured,
        external_id=_text(field(data, "externalid"), "externalId"),
        active=_active(field(data, "active")),
    )


def group_input(body: Any) -> GroupInput:
    data = _object(body)
    display = _text(field(data, "displayname"), "displayName", required=True)
    assert display
    raw = field(data, "members")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid_value('members must be a list of {"value": <user id>}')
    if len(raw) > MEMBERS_MAX:
        raise invalid_value(f"a group has at most {MEMBERS_MAX} members")
    members: dict[str, None] = {}
    for number, member in enumerate(raw, 1):
        value = field(member, "value") if isinstance(member, dict) else None
        if not isinstance(value, str) or not 1 <= len(value) <= bounds.ID_MAX_CHARS:
            raise invalid_value(f"members[{number}].value must be a user id")
        kind = field(member, "type")
        if isinstance(kind, str) and kind.lower() == "group":
            raise invalid_value(f"members[{number}]: groups in groups are not supported")
        members[value] = None
    return GroupInput(display, _text(field(data, "externalid"), "externalId"), tuple(members))


def select_attributes(
    resource: dict[str, Any], *, attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """``?attributes=`` / ``?excludedAttributes=`` (top-level names; ``id``, ``schemas``
    and ``meta`` are always returned)."""
    if attributes:
        keep = {a.strip().lower().rsplit(":", 1)[-1].split(".")[0] for a in attributes.split(",")}
        keep |= {"id", "schemas", "meta"}
        return {k: v for k, v in resource.items() if k.lower() in keep}
    if excluded:
        drop = {a.strip().lower().rsplit(":", 1)[-1].split(".")[0] for a in excluded.split(",")}
        drop -= {"id", "schemas", "meta"}
        return {k: v for k, v in resource.items() if k.lower() not in drop}
    return resource
