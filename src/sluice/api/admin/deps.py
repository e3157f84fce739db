"""Shared pieces of the admin routers: the caller, the policy tag, errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from sluice.auth.cache import token_from_headers
from sluice.auth.principal import Principal
from sluice.control.plane import ControlPlane
from sluice.errors import BadRequest, ErrorKind, GatewayError, retry_after_value
from sluice.storage.availability import as_dependency_unavailable
from sluice.tenancy.keys import KeyService
from sluice.tenancy.service import Tenancy


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    """The offending field (``limits.rpm``, ``budget.usd``, ...) when one is to blame."""
    code: str | None


class ErrorOut(BaseModel):
    """Every error of the admin API: 400 (a field out of its bounds or of the wrong type,
    named by ``param``), 401, 403, 404, and where documented 409 and 503."""

    error: ErrorDetail


ROW_ID_MAX = 2**31 - 1
"""The largest row id a query may name (audit and alert ids are 32-bit integer columns)."""
COMMON_ERRORS = (400, 401, 403, 404, 503)
_DESCRIPTIONS = {
    400: "Invalid input; `error.param` names the field",
    401: "No or an unknown key",
    403: "Not allowed for this caller",
    404: "No such object (or not visible to this caller)",
    409: "A name that is already taken",
    503: (
        "Not available now (`Retry-After` says when to retry): the database is not "
        "reachable, the gateway is starting or draining, or the feature is not configured"
    ),
}


def error_responses(statuses: tuple[int, ...] = COMMON_ERRORS) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (every router gets the common ones)."""
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in statuses}


Archived = Annotated[bool, Query(description="Include archived organisations, teams or users.")]
"""The ``archived`` query flag of the tenancy lists."""


def policy(text: str, *, errors: tuple[int, ...] = ()) -> dict[str, Any]:
    """The route's access rule, published in OpenAPI and checked by the role-matrix test;
    ``errors``: statuses the route may answer beyond 400, 401, 403 and 404."""
    out: dict[str, Any] = {"openapi_extra": {"x-sluice-policy": text}}
    if errors:
        out["responses"] = error_responses(errors)
    return out


@dataclass(frozen=True, slots=True)
class AdminContext:
    """What every admin router gets: the control plane's services."""

    control: ControlPlane

    @property
    def tenancy(self) -> Tenancy:
        return self.control.tenancy

    @property
    def keys(self) -> KeyService:
        return self.control.keys

    def actor(self, request: Request) -> Principal:
        """The caller; FastAPI dependency."""
        token = token_from_headers(
            request.headers.get("authorization", "").encode("latin-1") or None,
            request.headers.get("x-api-key", "").encode("latin-1") or None,
        )
        principal = self.control.cache.authenticate(token, request.scope)
        if principal.user_id is None and not principal.is_admin:
            raise GatewayError(
                ErrorKind.CALLER_FORBIDDEN,
                "the admin API needs the master key or a user's personal key",
            )
        return principal


def no_nul(request: Request) -> None:
    """Every route's dependency: a path or query parameter holding a NUL character is a 400
    naming it (PostgreSQL cannot store or even compare such text, so it would be a 500)."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if "\x00" in str(value):
            raise BadRequest(f"{name} must not contain NUL characters", param=name)


def _error(exc: GatewayError) -> JSONResponse:
    headers = {}
    retry_after = retry_after_value(exc)
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return JSONResponse(exc.to_openai(), status_code=exc.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(validation_error(exc))

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # The database is down or frozen: 503 with Retry-After, not 500. Anything else of
        # these classes is a bug and goes on to the server's 500 (with its traceback).
        unavailable = as_dependency_unavailable(exc)
        if unavailable is None:
            raise exc
        return _error(unavailable)

    app.add_exception_handler(SQLAlchemyError, _database)
    app.add_exception_handler(OSError, _database)  # a refused connection; TimeoutError too

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {404: ErrorKind.CALLER_NOT_FOUND, 405: ErrorKind.CALLER_METHOD_NOT_ALLOWED}.get(
            exc.status_code, ErrorKind.CALLER_BAD_REQUEST
        )
        return _error(GatewayError(kind, str(exc.detail), status=exc.status_code))


def validation_error(exc: RequestValidationError) -> GatewayError:
    """The first problem of a request as a 400 whose ``param`` names the field
    (``limits.models.gpt-4o.rpm``); a body that is not JSON names no field."""
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        return GatewayError(ErrorKind.CALLER_BAD_REQUEST, "the body is not valid JSON")
    loc = [str(p) for p in first["loc"] if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    message = f"{field}: {first['msg']}" if field else str(first["msg"])
    return GatewayError(ErrorKind.CALLER_BAD_REQUEST, message, param=field)


def install_openapi(app: FastAPI) -> None:
    """Publish validation errors as what they are, 400 with an ``ErrorOut`` body, not
    FastAPI's default 422 (which this API never answers)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    if isinstance(op, dict):
                        op.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
