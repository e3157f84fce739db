"""An in-process :class:`~sluice.files.base.FileAccess`: files kept in a dict, owned as the
Files API owns them (a user's keys share their files; a service account's keys their
team's). For tests and for a process that runs batches without the files API."""

from __future__ import annotations

import time

from sluice.auth.principal import Principal
from sluice.errors import ErrorKind, GatewayError
from sluice.files.base import FileRecord
from sluice.ids import random_hex


class InMemoryFiles:
    def __init__(self) -> None:
        self.records: dict[str, FileRecord] = {}
        self.data: dict[str, bytes] = {}

    def _mine(self, record: FileRecord, principal: Principal) -> bool:
        if principal.user_id is not None:
            return record.user_id == principal.user_id
        if principal.service_account_id is not None and principal.team_id is not None:
            return record.user_id is None and record.team_id == principal.team_id
        return (
            record.user_id is None
            and record.team_id is None
            and (record.key_id == principal.key_id)
        )

    async def read(self, principal: Principal, file_id: str, *, max_bytes: int) -> bytes:
        record = self.records.get(file_id)
        if record is None or not self._mine(record, principal):
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no file {file_id!r}")
        data = self.data[file_id]
        if len(data) > max_bytes:
            raise GatewayError(
                ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
                f"the file is larger than {max_bytes} bytes",
            )
        return data

    async def create(
        self, principal: Principal, *, purpose: str, filename: str, data: bytes
    ) -> FileRecord:
        record = FileRecord(
            id="file-" + random_hex(12),
            purpose=purpose,
            filename=filename,
            bytes=len(data),
            created_at=int(time.time()),
            expires_at=None,
            user_id=principal.user_id,
            team_id=principal.team_id
            if principal.user_id is None and principal.service_account_id is not None
            else None,
            key_id=principal.key_id,
        )
        self.records[record.id] = record
        self.data[record.id] = data
        return record
