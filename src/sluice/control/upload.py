"""One file upload read from a ``multipart/form-data`` body as it arrives: the fields, then
the file streamed into the files service, then the checks that need every field. Shared by
``/v1/files`` and the console's Files page."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sluice.control.files import (
    FilesService,
    Staged,
    check_expiry,
    check_filename,
    check_purpose,
)
from sluice.errors import BadRequest
from sluice.files.base import FileRecord
from sluice.files.multipart import FormReader
from sluice.files.owner import FileOwner

MAX_FIELD_BYTES = 1024
FIELDS = frozenset({"purpose", "expires_after[anchor]", "expires_after[seconds]"})
"""The form fields of an upload, as OpenAI's; other fields are skipped unread."""

FieldCheck = Callable[[Mapping[str, str]], None]


async def read_upload(
    files: FilesService,
    owner: FileOwner,
    reader: FormReader,
    *,
    fields: frozenset[str] = FIELDS,
    before_file: FieldCheck | None = None,
) -> FileRecord:
    """Read the form, store its one ``file`` part for ``owner`` and return the file.
    ``before_file`` sees the fields sent before the file part and may refuse the upload
    before any byte of it is stored (the console's CSRF token). The purpose is checked as
    soon as it is known; any failure deletes what was stored."""
    seen: dict[str, str] = {}
    staged: Staged | None = None
    filename = ""
    try:
        while (part := await reader.next_part()) is not None:
            if part.name == "file":
                if staged is not None:
                    raise BadRequest("file: only one file per upload", param="file")
                if part.filename is None:
                    raise BadRequest("file: must be a file part", param="file")
                filename = check_filename(part.filename)
                if before_file is not None:
                    before_file(seen)
                if "purpose" in seen:  # refused before the bytes are read
                    check_purpose(seen["purpose"])
                staged = await files.stage(owner, reader.data())
            elif part.name in fields:
                value = await reader.text(max_bytes=MAX_FIELD_BYTES, name=part.name)
                if value:  # an empty field is one not sent (a form's "none" choice)
                    seen[part.name] = value
        if staged is None:
            raise BadRequest("file: the upload has no file part", param="file")
        purpose = check_purpose(seen.get("purpose"))
        expiry = check_expiry(seen.get("expires_after[anchor]"), seen.get("expires_after[seconds]"))
    except BaseException:
        if staged is not None:
            await files.discard(staged)
        raise
    return await files.commit(staged, purpose=purpose, filename=filename, expires_after_s=expiry)
