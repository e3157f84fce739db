"""One request's documents: found in its messages, decoded, read from the Files API when
named by id, and rewritten for each deployment that serves it.

Three shapes carry documents: OpenAI chat ``file`` parts
(``{"type": "file", "file": {"file_data": "data:...;base64,...", "filename": ...}}`` or
``{"file": {"file_id": "file-..."}}``), Responses ``input_file`` parts (the same fields on the
part) and Anthropic Messages ``document`` blocks (``base64`` and ``text`` sources). Other
sources (URLs, a provider's own file ids) are not the gateway's to read and are forwarded
as sent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sluice.documents import kinds
from sluice.documents.reader import DocumentReader, unsupported_type
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.types import Endpoint, ProviderRequest

if TYPE_CHECKING:
    from sluice.auth.principal import Principal

Read = Callable[[dict[str, Any], tuple[int, int], int], "Document | None"]


@dataclass(frozen=True, slots=True)
class _Shape:
    """Where one request format carries documents."""

    marker: bytes
    """In the raw body of any request that carries one (a quick first check)."""
    container: str
    """The body's list of messages (or input items)."""
    part_type: str
    read: Read
    text_type: str
    """The type of a text part in this format."""


def may_carry(req: ProviderRequest) -> bool:
    """Whether ``req`` may hold documents: a byte search of the body as sent (cheap), so a
    request without any is not walked."""
    shape = _SHAPES.get(req.endpoint)
    if shape is None:
        return False
    return not req.raw or shape.marker in req.raw


@dataclass(slots=True)
class Document:
    """One document part of the request."""

    index: tuple[int, int]
    """(message, part) in the request's ``messages``."""
    param: str
    """The part's field, named in errors (``messages[1].content[2].file``)."""
    name: str
    media_type: str
    """Normalised (``kinds.media_type``); ``""`` when neither type nor name says."""
    file_id: str | None = None
    data: bytes | None = None
    """Decoded bytes (read from the Files API for a ``file_id``, once resolved)."""
    text: str | None = None
    """The extracted text, once extracted."""
    messages_text: bool = False
    """A Messages ``text`` source: its text is given, nothing to extract."""

    def data_url(self) -> str:
        data = self.data or b""
        return f"data:{self.media_type};base64,{base64.b64encode(data).decode()}"


def _b64(value: str, *, param: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{param}: the file data is not valid base64", param=param) from None


def _chat_part(part: dict[str, Any], index: tuple[int, int], n: int) -> Document | None:
    param = f"messages[{index[0]}].content[{index[1]}].file"
    spec = part.get("file")
    if not isinstance(spec, dict):
        raise BadRequest(f"'{param}' must be an object", param=param)
    return _file_spec(spec, param, n, index)


def _responses_part(part: dict[str, Any], index: tuple[int, int], n: int) -> Document | None:
    if "file_url" in part and "file_data" not in part and "file_id" not in part:
        return None  # a URL: forwarded as sent
    return _file_spec(part, f"input[{index[0]}].content[{index[1]}]", n, index)


def _file_spec(spec: dict[str, Any], param: str, n: int, index: tuple[int, int]) -> Document:
    """An OpenAI file (``file_data`` as a data URL or bare base64, or ``file_id``)."""
    name = spec.get("filename")
    name = name if isinstance(name, str) and name else None
    file_id, data = spec.get("file_id"), spec.get("file_data")
    if isinstance(file_id, str) and file_id and data is None:
        return Document(index, param, name or file_id, "", file_id=file_id)
    if not isinstance(data, str) or not data:
        raise BadRequest(f"'{param}' needs file_data (a base64 data URL) or file_id", param=param)
    declared: str | None = None
    if data.startswith("data:"):
        head, sep, data = data[5:].partition(",")
        if not sep or not head.endswith(";base64"):
            raise BadRequest(
                f"{param}.file_data: must be a base64 data URL (data:<type>;base64,...)",
                param=f"{param}.file_data",
            )
        declared = head.removesuffix(";base64")
    raw = _b64(data, param=f"{param}.file_data")
    name = name or f"document-{n + 1}"
    return Document(index, param, name, kinds.media_type(declared, name), data=raw)


def _messages_block(block: dict[str, Any], index: tuple[int, int], n: int) -> Document | None:
    param = f"messages[{index[0]}].content[{index[1]}].source"
    source = block.get("source")
    if not isinstance(source, dict):
        raise BadRequest(f"'{param}' must be an object", param=param)
    title = block.get("title")
    name = title if isinstance(title, str) and title else f"document-{n + 1}"
    kind, data = source.get("type"), source.get("data")
    if kind == "text":
        if not isinstance(data, str):
            raise BadRequest(f"'{param}.data' must be a string", param=f"{param}.data")
        return Document(index, param, name, kinds.PLAIN, text=data, messages_text=True)
    if kind != "base64":
        return None  # a URL or a provider's file: forwarded as sent
    if not isinstance(data, str) or not data:
        raise BadRequest(f"'{param}.data' must be base64 data", param=f"{param}.data")
    declared = source.get("media_type")
    media = kinds.media_type(declared if isinstance(declared, str) else None, name)
    return Document(index, param, name, media, data=_b64(data, param=f"{param}.data"))


def find(req: ProviderRequest, *, max_files: int) -> list[Document]:
    """The documents of ``req`` in order; malformed parts raise 400 naming them."""
    shape = _SHAPES.get(req.endpoint)
    if shape is None:
        return []
    wanted, read = shape.part_type, shape.read
    found: list[Document] = []
    messages = req.body.get(shape.container)
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != wanted:
                continue
            doc = read(part, (i, j), len(found))
            if doc is None:
                continue
            if len(found) >= max_files:
                raise BadRequest(
                    f"{doc.param}: a request may carry at most {max_files} documents",
                    param=doc.param,
                )
            found.append(doc)
    return found


_SHAPES: dict[Endpoint, _Shape] = {
    Endpoint.CHAT: _Shape(b'"file"', "messages", "file", _chat_part, "text"),
    Endpoint.MESSAGES: _Shape(b'"document"', "messages", "document", _messages_block, "text"),
    Endpoint.RESPONSES: _Shape(
        b'"input_file"', "input", "input_file", _responses_part, "input_text"
    ),
}
"""Request format → where its documents are (a table: a format is a row)."""


def frame(doc: Document) -> str:
    """The text part that stands for a document: its text framed with its name."""
    name = doc.name.replace('"', "'").replace("\n", " ")
    return f'<document name="{name}">\n{doc.text or ""}\n</document>'


class Documents:
    """One request's documents and what was made of them; shared by its attempts."""

    def __init__(self, reader: DocumentReader, req: ProviderRequest, found: list[Document]):
        self.reader = reader
        self.request = req
        self.found = found
        self._lock = asyncio.Lock()
        self._made: dict[frozenset[str], ProviderRequest] = {}
        """The request as made for each set of native types (retries reuse it)."""

    async def resolve(self, principal: Principal) -> None:
        """Read every ``file_id`` part through the Files API (its ownership rules), and
        check the size caps over all documents."""
        config = self.reader.config
        total = 0
        for doc in self.found:
            if doc.file_id is not None:
                await self._open(doc, principal)
            size = len(doc.data or b"") + len((doc.text or "").encode())
            if size > config.max_file_bytes:
                raise _too_large(
                    f"the document {doc.name!r} has {size} bytes, more than the limit of "
                    f"{config.max_file_bytes}",
                    doc,
                )
            total += size
            if total > config.max_total_bytes:
                raise _too_large(
                    f"the request's documents add up to more than {config.max_total_bytes} bytes",
                    doc,
                )
            if not doc.media_type and not doc.messages_text:
                raise unsupported_type(doc.media_type, param=doc.param)

    async def _open(self, doc: Document, principal: Principal) -> None:
        files, file_id = self.reader.files, doc.file_id or ""
        if files is None:
            raise BadRequest(
                f"{doc.param}: file ids are not available on this gateway", param=doc.param
            )
        try:
            name, data = await files.open(
                principal, file_id, max_bytes=self.reader.config.max_file_bytes
            )
        except GatewayError as exc:
            if exc.kind is ErrorKind.CALLER_NOT_FOUND:
                raise GatewayError(
                    ErrorKind.CALLER_BAD_REQUEST,
                    f"{doc.param}.file_id: no file {file_id!r} (or not yours)",
                    param=f"{doc.param}.file_id",
                    code="file_not_found",
                ) from None
            if exc.kind is ErrorKind.CALLER_PAYLOAD_TOO_LARGE:
                raise _too_large(exc.message, doc) from None
            raise
        doc.data = data
        if doc.name == file_id:
            doc.name = name
        doc.media_type = kinds.media_type(None, name)

    async def extract(self, wanted: list[Document]) -> None:
        """Extract the text of ``wanted`` (once each; concurrent, each under its deadline)."""
        async with self._lock:
            todo = [d for d in wanted if d.text is None]
            if not todo:
                return
            if len(todo) == 1:
                await self._extract(todo[0])
                return
            try:
                async with asyncio.TaskGroup() as group:
                    for doc in todo:
                        group.create_task(self._extract(doc))
            except ExceptionGroup as errors:
                # The first document that failed answers (the others were cancelled, and
                # their threads told to stop).
                first = errors.exceptions[0]
                raise first if isinstance(first, GatewayError) else errors from None

    async def _extract(self, doc: Document) -> None:
        doc.text = await self.reader.text(
            doc.data or b"", doc.media_type, param=doc.param, name=doc.name
        )

    @property
    def extracted_chars(self) -> int:
        """Characters of text the documents turn into so far (for the estimate)."""
        return sum(len(frame(d)) for d in self.found if d.text is not None)

    async def for_deployment(self, native: frozenset[str]) -> ProviderRequest:
        """The request as a deployment taking ``native`` media types receives it: those
        forwarded as files (a ``file_id`` inlined: no upstream knows the gateway's ids),
        every other document replaced by its framed text."""
        made = self._made.get(native)
        if made is None:
            made = self._made[native] = await self._make(native)
        return made

    async def _make(self, native: frozenset[str]) -> ProviderRequest:
        as_text = [d for d in self.found if d.media_type not in native]
        inline = [d for d in self.found if d.file_id is not None and d.media_type in native]
        if not as_text and not inline:
            return self.request
        await self.extract([d for d in as_text if not d.messages_text])
        req = self.request
        shape = _SHAPES[req.endpoint]
        messages = list(req.body[shape.container])
        changed: dict[int, list[Any]] = {}
        for doc in as_text + inline:
            i, j = doc.index
            content = changed.get(i)
            if content is None:
                content = changed[i] = list(messages[i]["content"])
            if doc.file_id is not None and doc.media_type in native:
                spec = {"file_data": doc.data_url(), "filename": doc.name}
                content[j] = (
                    {"type": "file", "file": spec}
                    if shape.part_type == "file"
                    else {"type": shape.part_type, **spec}
                )
            else:
                content[j] = {"type": shape.text_type, "text": frame(doc)}
        for i, content in changed.items():
            messages[i] = {**messages[i], "content": content}
        body = {**req.body, shape.container: messages}
        return dataclasses.replace(req, body=body, raw=orjson.dumps(body))


def _too_large(message: str, doc: Document) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
        f"{doc.param}: {message}",
        param=doc.param,
        code="file_too_large",
    )
