"""Shared pieces of the admin routers: the caller, the policy tag, errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from sluice.auth.cache import token_from_headers
from sluice.auth.principal import Principal
from sluice.errors import ErrorKind, GatewayError, retry_after_value
from sluice.lifespan import Runtime
from sluice.storage.availability import as_dependency_unavailable
from sluice.tenancy.keys import KeyService
from sluice.tenancy.service import Tenancy


def policy(text: str) -> dict[str, Any]:
    """The route's access rule, published in OpenAPI and checked by the role-matrix test."""
    return {"openapi_extra": {"x-sluice-policy": text}}


@dataclass(frozen=True, slots=True)
class AdminContext:
    rt: Runtime
    tenancy: Tenancy
    keys: KeyService

    @classmethod
    def build(cls, rt: Runtime) -> AdminContext:
        async def changed() -> None:
            await rt.refresh_keys(force=True)
            await rt.announce_key_change()

        tenancy = Tenancy(
            rt.storage.tenancy,
            rt.storage.keys,
            rt.storage.meta,
            clock=rt.clock,
            changed=changed,
            default_max_keys=rt.settings.max_keys_per_user,
        )
        return cls(rt, tenancy, KeyService(tenancy))

    def actor(self, request: Request) -> Principal:
        """The caller; FastAPI dependency."""
        token = token_from_headers(
            request.headers.get("authorization", "").encode("latin-1") or None,
            request.headers.get("x-api-key", "").encode("latin-1") or None,
        )
        principal = self.rt.keys.authenticate(token, request.scope)
        if principal.user_id is None and not principal.is_admin:
            raise GatewayError(
                ErrorKind.CALLER_FORBIDDEN,
                "the admin API needs the master key or a user's personal key",
            )
        return principal


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
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first["loc"] if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        return _error(GatewayError(ErrorKind.CALLER_BAD_REQUEST, message, param=field))

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
