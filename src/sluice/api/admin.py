"""The admin REST API (control plane) under ``/api/v1``; OpenAPI at ``/api/docs``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from sluice import __version__
from sluice.auth.cache import token_from_headers
from sluice.auth.keys import KeyRecord
from sluice.auth.principal import Principal
from sluice.auth.service import create_key
from sluice.errors import ErrorKind, GatewayError
from sluice.lifespan import Runtime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    expires_at: datetime | None = None
    """When the key stops working (ISO 8601; UTC when no offset is given)."""
    models: list[str] | None = None
    """Public model names the key may call; omitted: every model."""
    metadata: dict[str, str] = Field(default_factory=dict)


class KeyOut(BaseModel):
    id: str
    name: str
    preview: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    models: list[str] | None
    metadata: dict[str, str]

    @classmethod
    def of(cls, r: KeyRecord) -> KeyOut:
        def dt(ts: float | None) -> datetime | None:
            return None if ts is None else datetime.fromtimestamp(ts, UTC)

        return cls(
            id=r.id,
            name=r.name,
            preview=r.preview,
            created_at=datetime.fromtimestamp(r.created_at, UTC),
            expires_at=dt(r.expires_at),
            revoked_at=dt(r.revoked_at),
            last_used_at=dt(r.last_used_at),
            models=list(r.models) if r.models is not None else None,
            metadata=r.metadata,
        )


class KeyCreated(KeyOut):
    key: str
    """The secret, shown only in this answer."""


class KeyList(BaseModel):
    data: list[KeyOut]


def _error(exc: GatewayError) -> JSONResponse:
    headers = {}
    if exc.retry_after_s is not None:
        headers["retry-after"] = str(round(exc.retry_after_s))
    return JSONResponse(exc.to_openai(), status_code=exc.status, headers=headers)


def build_admin_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="Sluice admin API",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )

    def admin(request: Request) -> Principal:
        token = token_from_headers(
            request.headers.get("authorization", "").encode("latin-1") or None,
            request.headers.get("x-api-key", "").encode("latin-1") or None,
        )
        principal = rt.keys.authenticate(token)
        if not principal.is_admin:
            raise GatewayError(ErrorKind.CALLER_FORBIDDEN, "this route needs an admin key")
        return principal

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(admin)])

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

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {404: ErrorKind.CALLER_NOT_FOUND, 405: ErrorKind.CALLER_METHOD_NOT_ALLOWED}.get(
            exc.status_code, ErrorKind.CALLER_BAD_REQUEST
        )
        return _error(GatewayError(kind, str(exc.detail), status=exc.status_code))

    @api.post("/keys", status_code=201, response_model=KeyCreated)
    async def create(body: KeyCreate) -> KeyCreated:
        expires = body.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        unknown = [m for m in body.models or () if rt.table.get(m) is None]
        if unknown:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"unknown models: {', '.join(unknown)}",
                param="models",
            )
        created = await create_key(
            rt.storage.keys,
            name=body.name,
            now=rt.clock.now(),
            expires_at=expires.timestamp() if expires else None,
            models=tuple(body.models) if body.models is not None else None,
            metadata=body.metadata,
        )
        rt.keys.put(created.record)
        await rt.announce_key_change()
        return KeyCreated(**KeyOut.of(created.record).model_dump(), key=created.secret)

    @api.get("/keys", response_model=KeyList)
    async def list_keys() -> KeyList:
        return KeyList(data=[KeyOut.of(r) for r in await rt.storage.keys.list()])

    @api.get("/keys/{key_id}", response_model=KeyOut)
    async def get_key(key_id: str) -> KeyOut:
        record = await rt.storage.keys.get(key_id)
        if record is None:
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no key {key_id!r}")
        return KeyOut.of(record)

    @api.delete("/keys/{key_id}", response_model=KeyOut)
    async def revoke(key_id: str) -> KeyOut:
        record = await rt.storage.keys.revoke(key_id, at=rt.clock.now())
        if record is None:
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no key {key_id!r}")
        rt.keys.put(record)
        await rt.announce_key_change()
        return KeyOut.of(record)

    app.include_router(api)
    return app
