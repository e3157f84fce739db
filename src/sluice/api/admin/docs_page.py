"""The admin API's interactive docs (``/api/docs``), served from packaged assets.

Swagger UI (5.x, which reads OpenAPI 3.1) comes from the ``fastapi-swagger`` package's
assets and is served by the gateway itself under ``/api/docs/static``, so the page works on
a machine without internet access.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC = "/api/docs/static"


def install_docs(app: FastAPI, *, title: str, openapi_url: str) -> None:
    """Add ``GET /api/docs`` (Swagger UI over ``openapi_url``) and its static assets."""
    assets = resources.files("fastapi_swagger") / "resources"
    app.mount(STATIC, StaticFiles(directory=str(assets)), name="api-docs-static")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} docs",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        )

    app.add_api_route("/api/docs", docs, methods=["GET"], include_in_schema=False)
