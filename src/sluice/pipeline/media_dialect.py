"""The media dialects: OpenAI's audio, image and moderation formats and the rerank format,
relayed as they are (no translation: a provider serves them natively or not at all).

JSON requests are read by :func:`sluice.pipeline.media.JSON_PARSERS`; a
``multipart/form-data`` request (transcription, translation, image edit) is read whole by
the edge, then split into its fields and files by :meth:`FormDialect.complete` with the
files unit's multipart reader (bounded part count and field sizes).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from sluice.auth.principal import Principal
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.files.multipart import FormReader, boundary_of
from sluice.pipeline.dialects.base import Translation
from sluice.pipeline.media import JSON_PARSERS, form_request
from sluice.pipeline.sink import Cut
from sluice.providers.base import UpstreamStream
from sluice.sse import frame
from sluice.types import Endpoint, ProviderRequest, Upload

MAX_FIELD_BYTES = 64 * 1024
"""Largest text field of a form (a transcription ``prompt``, an edit's ``prompt``)."""
LIST_FIELDS = frozenset({"timestamp_granularities[]", "include[]"})


class MediaDialect:
    """A JSON media endpoint in OpenAI's envelope (errors included)."""

    carries_metadata = False
    stream_ends: tuple[bytes, ...] = ()

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def parse(self, raw: bytes) -> ProviderRequest:
        return JSON_PARSERS[self.endpoint](raw)

    def plan(self, req: ProviderRequest, capabilities: frozenset[Endpoint]) -> Translation | None:
        if req.endpoint in capabilities:
            return None
        raise GatewayError(
            ErrorKind.CALLER_UNSUPPORTED,
            f"the model {req.model!r} does not support {self.endpoint.value}",
            param="model",
        )

    def stream_tail(self, req: ProviderRequest, upstream: UpstreamStream) -> bytes:
        return b""  # a transcript stream ends with its own transcript.text.done event

    def error(self, exc: GatewayError) -> bytes:
        return orjson.dumps(exc.to_openai())

    def stream_error(self, exc: GatewayError) -> bytes:
        if self.endpoint is Endpoint.SPEECH:  # audio bytes: no event can say it failed
            return Cut()
        return frame(orjson.dumps(exc.to_openai()))


class FormDialect(MediaDialect):
    """A ``multipart/form-data`` media endpoint; one instance per request (it carries the
    request's content type)."""

    def __init__(self, endpoint: Endpoint, content_type: bytes | None) -> None:
        super().__init__(endpoint)
        self._content_type = content_type

    def parse(self, raw: bytes) -> ProviderRequest:
        boundary_of(self._content_type)  # 400 naming ``file`` before anything else
        return ProviderRequest(self.endpoint, {}, raw, "")

    async def complete(self, req: ProviderRequest, principal: Principal) -> ProviderRequest:
        """The request read from its form (``prepare`` of the data plane's handler)."""
        fields, uploads = await read_form(req.raw, boundary_of(self._content_type))
        return form_request(self.endpoint, fields, uploads)


async def read_form(raw: bytes, boundary: bytes) -> tuple[dict[str, Any], list[Upload]]:
    """The text fields (``[]`` fields as lists) and the file parts of a whole form body."""
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    reader = FormReader(receive, boundary, max_body_bytes=len(raw) + 1, file_limit=len(raw))
    fields: dict[str, Any] = {}
    uploads: list[Upload] = []
    while (part := await reader.next_part()) is not None:
        if part.filename is not None:
            data = b"".join([chunk async for chunk in reader.data()])
            uploads.append(Upload(part.name, part.filename or part.name, "", data))
            continue
        value = await reader.text(max_bytes=MAX_FIELD_BYTES, name=part.name)
        if part.name in LIST_FIELDS:
            fields.setdefault(part.name, []).append(value)
        elif part.name in fields:
            raise BadRequest(f"'{part.name}' is given twice", param=part.name)
        else:
            fields[part.name] = value
    return fields, uploads
