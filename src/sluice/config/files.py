"""The ``files`` section of the gateway config: where ``/v1/files`` keeps file bytes, and the
bounds on them (docs/files-and-batches.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sluice.config.secrets import SecretRef

MIB = 1024 * 1024
GIB = 1024 * MIB


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class S3Settings(_Frozen):
    """An S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...), shared by every replica."""

    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    endpoint_url: str | None = None
    """The store's base URL (``http://minio:9000``); unset: AWS S3 of ``region``. An
    ``http://`` URL is allowed (a store on a private network)."""
    region: str = "us-east-1"
    access_key_id: SecretRef | None = None
    """``env:NAME`` (or a literal); unset with ``secret_access_key``: requests are unsigned
    unless the process's standard AWS environment provides credentials."""
    secret_access_key: SecretRef | None = None
    prefix: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9._/-]*$")] = "sluice/files"
    """Object keys start with this (no leading or trailing slash needed)."""
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    """Deadline of one request to the store (a whole upload part or download)."""
    connect_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    """Extra attempts of a failed request (server errors, timeouts)."""


class FilesConfig(_Frozen):
    """Files uploaded through ``/v1/files`` (and written by batches): storage and bounds."""

    backend: Literal["local", "s3"] = "local"
    """``local``: a directory on this machine (one process, or replicas sharing a volume);
    ``s3``: an S3-compatible bucket (replicas)."""
    directory: Path | None = None
    """The ``local`` backend's directory; unset: ``<SLUICE_DATA_DIR>/files``."""
    s3: S3Settings | None = None
    """The ``s3`` backend's bucket; required when ``backend`` is ``s3``."""
    max_file_bytes: Annotated[int, Field(ge=1, le=1024 * GIB)] = 512 * MIB
    """Largest file one upload may carry (413 naming ``file`` above it; the upload is read
    as it arrives and refused at this many bytes, never buffered whole)."""
    quota_bytes: Annotated[int, Field(ge=0)] | None = 10 * GIB
    """Bytes of unexpired files an owner may keep (a user across their keys; a team for
    its service accounts' keys); an upload past it is refused. ``null``: no quota."""
    default_expiry_s: Annotated[int, Field(ge=60)] | None = None
    """Seconds after upload a file expires when the upload names no ``expires_after``;
    ``null``: kept until deleted. Expired files disappear from the API at once and their
    bytes and rows are deleted by the cleanup task."""
    cleanup_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    """How often the cleanup task deletes expired files."""

    @model_validator(mode="after")
    def _backend_settings(self) -> FilesConfig:
        if self.backend == "s3" and self.s3 is None:
            raise ValueError("files.s3: required when files.backend is s3")
        return self
