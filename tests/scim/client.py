"""A small SCIM 2.0 client the tests drive the gateway with, as an IdP would (RFC 7644)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

MEDIA_TYPE = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@dataclass
class ScimClient:
    http: httpx.AsyncClient
    token: str
    base: str = "/scim/v2"

    async def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, **params: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": MEDIA_TYPE}
        if body is not None:
            headers["Content-Type"] = MEDIA_TYPE
        resp = await self.http.request(
            method,
            self.base + path,
            json=body,
            headers=headers,
            params={k: v for k, v in params.items() if v is not None},
        )
        if resp.status_code != 204:
            assert resp.headers["content-type"] == MEDIA_TYPE, resp.text
        return resp

    async def ok(self, method: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        resp = await self.request(method, path, body, **params)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def error(
        self, status: int, method: str, path: str, body: Any = None, **params: Any
    ) -> dict[str, Any]:
        resp = await self.request(method, path, body, **params)
        assert resp.status_code == status, resp.text
        data: dict[str, Any] = resp.json()
        assert data["schemas"] == [ERROR]
        assert data["status"] == str(status)
        return data

    async def create_user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        body = {
            "schemas": [USER],
            "userName": user_name,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "active": True,
            **extra,
        }
        resp = await self.request("POST", "/Users", body)
        assert resp.status_code == 201, resp.text
        assert resp.headers["location"] == resp.json()["meta"]["location"]
        return resp.json()  # type: ignore[no-any-return]

    async def patch(self, path: str, *operations: dict[str, Any]) -> dict[str, Any]:
        return await self.ok("PATCH", path, {"schemas": [PATCH], "Operations": list(operations)})

    async def list(self, path: str, **params: Any) -> dict[str, Any]:
        data = await self.ok("GET", path, **params)
        assert data["schemas"] == [LIST]
        return data
