"""SCIM 2.0 over HTTP at ``/scim/v2`` (RFC 7644): the bearer token, the body bounds, the
``application/scim+json`` answers and the SCIM error shape. The use cases are
:class:`sluice.scim.service.ScimService`'s."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.config.scim import ScimConfig
from sluice.control.plane import ControlPlane
from sluice.errors import GatewayError
from sluice.scim import discovery
from sluice.scim.errors import ScimError, invalid_syntax, invalid_value, not_found
from sluice.scim.resources import LIST_SCHEMA, select_attributes
from sluice.scim.service import COUNT_DEFAULT, COUNT_MAX, Page, ScimService
from sluice.storage.availability import as_dependency_unavailable

log = logging.getLogger("sluice.scim")

MEDIA_TYPE = "application/scim+json"
PREFIX = "/scim/v2"
QUERY_MAX_CHARS = 2000

Endpoint = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


def _error(exc: ScimError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
    return _json(exc.body(), exc.status, headers)


def _from_gateway(exc: GatewayError) -> ScimError:
    kinds = {409: "uniqueness", 400: "invalidValue"}
    return ScimError(exc.status, exc.message, kinds.get(exc.status))


class ScimApi:
    def __init__(self, service: ScimService, config: ScimConfig) -> None:
        self._service = service
        self._config = config
        token = config.token.resolve()
        self._digest = hashlib.sha256(token.encode()).digest() if token else None

    def _authorize(self, request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if self._digest is None or scheme.lower() != "bearer" or not given:
            raise ScimError(401, "a valid bearer token is required")
        # Compared as digests in constant time: neither the length nor a prefix leaks.
        if not hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(), self._digest):
            raise ScimError(401, "a valid bearer token is required")

    async def _body(self, request: Request) -> Any:
        limit = self._config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise ScimError(413, f"the body is larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ScimError(413, f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            raise invalid_syntax("the body is not valid JSON") from None

    def route(self, handler: Callable[[Request], Awaitable[Response]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                self._authorize(request)
                if len(request.url.query) > QUERY_MAX_CHARS:
                    raise invalid_value(f"the query is longer than {QUERY_MAX_CHARS} characters")
                return await handler(request)
            except ScimError as exc:
                return _error(exc)
            except GatewayError as exc:
                return _error(_from_gateway(exc))
            except Exception as exc:
                unavailable = as_dependency_unavailable(exc)
                if unavailable is not None:
                    return _error(ScimError(503, unavailable.message))
                log.exception("SCIM %s %s failed", request.method, request.url.path)
                return _error(ScimError(500, "the gateway failed to answer; see its log"))

        return endpoint

    # handlers ----------------------------------------------------------------------------
    async def config(self, request: Request) -> Response:
        return _json(discovery.service_provider_config(_base(request)))

    async def resource_types(self, request: Request) -> Response:
        found = discovery.resource_types(_base(request))
        return _one_or_list(request, found, "ResourceType")

    async def schemas(self, request: Request) -> Response:
        return _one_or_list(request, discovery.schemas(_base(request)), "Schema")

    async def users(self, request: Request) -> Response:
        s, base = self._service, _base(request)
        if request.method == "POST":
            return _created(await s.create_user(await self._body(request), base=base))
        start, count, query = _paging(request)
        return _list(request, await s.list_users(base=base, filter=query, start=start, count=count))

    async def user(self, request: Request) -> Response:
        s, base, user_id = self._service, _base(request), request.path_params["id"]
        await _precondition(request, lambda: s.get_user(user_id, base=base))
        if request.method == "GET":
            found = await s.get_user(user_id, base=base)
        elif request.method == "PUT":
            found = await s.replace_user(user_id, await self._body(request), base=base)
        elif request.method == "PATCH":
            found = await s.patch_user(user_id, await self._body(request), base=base)
        else:
            await s.delete_user(user_id)
            return Response(status_code=204)
        return _resource(request, found)

    async def groups(self, request: Request) -> Response:
        s, base = self._service, _base(request)
        if request.method == "POST":
            return _created(await s.create_group(await self._body(request), base=base))
        start, count, query = _paging(request)
        return _list(
            request, await s.list_groups(base=base, filter=query, start=start, count=count)
        )

    async def group(self, request: Request) -> Response:
        s, base, group_id = self._service, _base(request), request.path_params["id"]
        await _precondition(request, lambda: s.get_group(group_id, base=base))
        if request.method == "GET":
            found = await s.get_group(group_id, base=base)
        elif request.method == "PUT":
            found = await s.replace_group(group_id, await self._body(request), base=base)
        elif request.method == "PATCH":
            found = await s.patch_group(group_id, await self._body(request), base=base)
        else:
            await s.delete_group(group_id)
            return Response(status_code=204)
        return _resource(request, found)


async def _precondition(request: Request, current: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """RFC 7644 §3.14: a change with ``If-Match`` applies only to that version (412
    otherwise). Checked before the change's own unit: it guards against a stale client,
    not against a concurrent writer."""
    wanted = request.headers.get("if-match")
    if wanted is None or request.method == "GET" or wanted.strip() == "*":
        return
    version = (await current())["meta"]["version"]
    if version not in {v.strip() for v in wanted.split(",")}:
        raise ScimError(412, f"the resource is at version {version}", "preconditionFailed")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_value(f"{name} must be a whole number") from None


def _paging(request: Request) -> tuple[int, int, str | None]:
    """RFC 7644 §3.4.2.4: ``startIndex`` below 1 counts as 1, ``count`` below 0 as 0, and
    above ``COUNT_MAX`` as ``COUNT_MAX``."""
    start = max(1, min(_int(request, "startIndex", 1), 2**31))
    count = max(0, min(_int(request, "count", COUNT_DEFAULT), COUNT_MAX))
    return start, count, request.query_params.get("filter")


def _select(request: Request, resource: dict[str, Any]) -> dict[str, Any]:
    return select_attributes(
        resource,
        attributes=request.query_params.get("attributes"),
        excluded=request.query_params.get("excludedAttributes"),
    )


def _resource(request: Request, resource: dict[str, Any]) -> Response:
    return _json(_select(request, resource), headers={"ETag": resource["meta"]["version"]})


def _created(resource: dict[str, Any]) -> Response:
    meta = resource["meta"]
    return _json(resource, 201, {"ETag": meta["version"], "Location": meta["location"]})


def _list(request: Request, page: Page) -> Response:
    return _json(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": page.total,
            "startIndex": page.start,
            "itemsPerPage": len(page.resources),
            "Resources": [_select(request, r) for r in page.resources],
        }
    )


def _one_or_list(request: Request, found: list[dict[str, Any]], kind: str) -> Response:
    wanted = request.path_params.get("id")
    if wanted is None:
        return _list(request, Page(len(found), 1, found))
    for item in found:
        if item["id"] == wanted:
            return _json(item)
    raise not_found(kind, wanted)


def build_scim_app(control: ControlPlane) -> Starlette:
    """The SCIM endpoints of ``control`` (which must have ``auth.scim`` configured)."""
    config = control.config.auth.scim
    assert control.scim is not None
    assert config is not None
    api = ScimApi(control.scim, config)
    rw = ["GET", "PUT", "PATCH", "DELETE"]
    routes = [
        Route(f"{PREFIX}/ServiceProviderConfig", api.route(api.config), methods=["GET"]),
        Route(f"{PREFIX}/ResourceTypes", api.route(api.resource_types), methods=["GET"]),
        Route(f"{PREFIX}/ResourceTypes/{{id}}", api.route(api.resource_types), methods=["GET"]),
        Route(f"{PREFIX}/Schemas", api.route(api.schemas), methods=["GET"]),
        Route(f"{PREFIX}/Schemas/{{id}}", api.route(api.schemas), methods=["GET"]),
        Route(f"{PREFIX}/Users", api.route(api.users), methods=["GET", "POST"]),
        Route(f"{PREFIX}/Users/{{id}}", api.route(api.user), methods=rw),
        Route(f"{PREFIX}/Groups", api.route(api.groups), methods=["GET", "POST"]),
        Route(f"{PREFIX}/Groups/{{id}}", api.route(api.group), methods=rw),
    ]

    async def unknown(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _error(ScimError(status, f"no SCIM endpoint {request.method} {request.url.path}"))

    return Starlette(routes=routes, exception_handlers={404: unknown, 405: unknown})
