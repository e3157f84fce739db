"""The admin REST API (control plane) under ``/api/v1``; OpenAPI at ``/api/docs``.

Every route declares its policy (``x-sluice-policy`` in the OpenAPI document); the rules
themselves live in ``sluice.tenancy``. Callers authenticate with the master key or their own
gateway key.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from sluice import __version__
from sluice.api.admin import (
    alerts,
    analytics,
    audit,
    cache,
    dead_letters,
    keys,
    mcp_servers,
    models,
    orgs,
    providers,
    routing,
    spend,
    sso,
    teams,
    terms,
    users,
)
from sluice.api.admin.deps import (
    AdminContext,
    error_responses,
    install_error_handlers,
    install_openapi,
    no_nul,
)
from sluice.api.admin.docs_page import install_docs
from sluice.api.admin.json_body import JsonBodies
from sluice.api.admin.names import NamedPaths
from sluice.control.plane import ControlPlane


def build_admin_app(control: ControlPlane) -> FastAPI:
    app = FastAPI(
        title="Sluice admin API",
        version=__version__,
        docs_url=None,
        openapi_url="/api/openapi.json",
        redoc_url=None,
        dependencies=[Depends(no_nul)],
    )
    app.add_middleware(JsonBodies)
    app.add_middleware(NamedPaths, directory=control.tenancy.directory)
    install_error_handlers(app)
    ctx = AdminContext(control)
    modules = (orgs, teams, users, keys, providers, spend, routing, audit, alerts, analytics)
    for module in (*modules, dead_letters, terms, sso, mcp_servers, cache, models):
        app.include_router(module.router(ctx), prefix="/api/v1", responses=error_responses())
    install_openapi(app)
    install_docs(app, title=app.title, openapi_url="/api/openapi.json")
    return app
