"""Admin request bodies are JSON whatever content type the client sent with them.

``curl -d '{...}'`` labels its body ``application/x-www-form-urlencoded`` and a browser's
``fetch`` with a string body ``text/plain``; the data plane reads such bodies as JSON, and so
does the admin API: every admin route takes JSON (or nothing), so a body with either label,
or with none, is relabelled ``application/json`` before FastAPI reads it. A body that is not
JSON then gets the usual 400 saying so.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_RELABELLED = (b"application/x-www-form-urlencoded", b"text/plain")


class JsonBodies:
    """ASGI middleware: relabel unlabelled, form-urlencoded and plain-text bodies as JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            headers = [(n, v) for n, v in scope["headers"] if n != b"content-type"]
            labels = [v for n, v in scope["headers"] if n == b"content-type"]
            if not labels or labels[0].split(b";")[0].strip().lower() in _RELABELLED:
                headers.append((b"content-type", b"application/json"))
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
