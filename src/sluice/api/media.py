"""The media routes of the data plane: ``/v1/audio/speech``, ``/v1/audio/transcriptions``,
``/v1/audio/translations``, ``/v1/images/generations``, ``/v1/images/edits``,
``/v1/rerank`` and ``/v1/moderations``.

Each goes through the data plane's one handler (authentication, access, limits and budget
hold, routing, one usage row) with a media dialect; multipart uploads have their own body
limit, refused 413 naming ``file``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sluice.api.dataplane import DataPlane
from sluice.api.render import Receive, Scope, Send
from sluice.pipeline.media_dialect import FormDialect, MediaDialect
from sluice.types import Endpoint

MediaHandler = Callable[[Scope, Receive, Send], Awaitable[None]]

_SPEECH = MediaDialect(Endpoint.SPEECH)
_IMAGES = MediaDialect(Endpoint.IMAGES)
_RERANK = MediaDialect(Endpoint.RERANK)
_MODERATIONS = MediaDialect(Endpoint.MODERATIONS)


def _content_type(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value)
    return None


class MediaRoutes:
    """The media handlers over one data plane."""

    def __init__(self, plane: DataPlane, *, max_upload_bytes: int) -> None:
        """``max_upload_bytes``: the largest multipart body (the audio or image file and its
        fields) a transcription, translation or image edit may send."""
        self._plane = plane
        self._upload = max_upload_bytes

    async def speech(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(scope, receive, send, _SPEECH)

    async def images(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(scope, receive, send, _IMAGES)

    async def rerank(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(scope, receive, send, _RERANK)

    async def moderations(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(scope, receive, send, _MODERATIONS)

    async def transcriptions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._form(scope, receive, send, Endpoint.TRANSCRIPTIONS)

    async def translations(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._form(scope, receive, send, Endpoint.TRANSLATIONS)

    async def image_edits(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._form(scope, receive, send, Endpoint.IMAGE_EDITS)

    async def _form(self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint) -> None:
        dialect = FormDialect(endpoint, _content_type(scope))
        await self._plane.handle(
            scope,
            receive,
            send,
            dialect,
            prepare=dialect.complete,
            upload_limit=self._upload,
        )

    def routes(self) -> list[tuple[str, MediaHandler]]:
        """``(path, handler)`` of every media route (POST), without the ``/v1`` prefix."""
        return [
            ("/audio/speech", self.speech),
            ("/audio/transcriptions", self.transcriptions),
            ("/audio/translations", self.translations),
            ("/images/generations", self.images),
            ("/images/edits", self.image_edits),
            ("/rerank", self.rerank),
            ("/moderations", self.moderations),
        ]
