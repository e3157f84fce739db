"""The discovery documents of RFC 7644 §4: ServiceProviderConfig, ResourceTypes, Schemas."""

from __future__ import annotations

from typing import Any

from sluice.scim.resources import GROUP_SCHEMA, USER_SCHEMA
from sluice.scim.service import COUNT_MAX

CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [CONFIG_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": COUNT_MAX},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The token of auth.scim.token in the gateway's config",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": name,
            "name": name,
            "endpoint": f"/{name}s",
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{name}"},
        }
        for name, schema in (("User", USER_SCHEMA), ("Group", GROUP_SCHEMA))
    ]


def _attr(
    name: str,
    kind: str = "string",
    *,
    required: bool = False,
    multi: bool = False,
    mutability: str = "readWrite",
    case_exact: bool = False,
    uniqueness: str = "none",
    subs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    }
    if subs is not None:
        out["subAttributes"] = subs
    return out


def schemas(base: str) -> list[dict[str, Any]]:
    user = [
        _attr("userName", required=True, uniqueness="server"),
        _attr(
            "name",
            "complex",
            subs=[_attr(p) for p in ("formatted", "familyName", "givenName", "middleName")]
            + [_attr("honorificPrefix"), _attr("honorificSuffix")],
        ),
        _attr("displayName"),
        _attr("externalId", case_exact=True),
        _attr("active", "boolean"),
        _attr(
            "emails",
            "complex",
            multi=True,
            mutability="readOnly",
            subs=[_attr("value"), _attr("type"), _attr("primary", "boolean")],
        ),
        _attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            subs=[_attr("value", mutability="readOnly"), _attr("display", mutability="readOnly")],
        ),
    ]
    group = [
        _attr("displayName", required=True, uniqueness="server"),
        _attr("externalId", case_exact=True),
        _attr(
            "members",
            "complex",
            multi=True,
            subs=[_attr("value", mutability="immutable"), _attr("display", mutability="readOnly")],
        ),
    ]
    return [
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": schema,
            "name": name,
            "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{schema}"},
        }
        for schema, name, attributes in (
            (USER_SCHEMA, "User", user),
            (GROUP_SCHEMA, "Group", group),
        )
    ]
