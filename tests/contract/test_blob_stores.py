"""The blob store seam (``sluice.files.base.BlobStore``) over every backend: a local directory
and an S3-compatible object store (a real S3 server, moto's, on a loopback port)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.config.files import S3Settings
from sluice.errors import ErrorKind, GatewayError
from sluice.files.base import BlobStore
from sluice.files.local import LocalBlobStore
from sluice.files.s3 import PART_BYTES, S3BlobStore
from tests.s3_server import moto_s3

BUCKET = "sluice-contract"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, with one bucket, for the whole session."""
    with moto_s3(BUCKET) as endpoint:
        yield endpoint


def s3_settings(endpoint: str, **extra: Any) -> S3Settings:
    values: dict[str, Any] = {
        "bucket": BUCKET,
        "endpoint_url": endpoint,
        "access_key_id": "test",
        "secret_access_key": "test",
        "prefix": f"t{os.urandom(4).hex()}",
        "timeout_s": 20,
        "retries": 0,
    }
    return S3Settings(**(values | extra))


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "files")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3BlobStore.build(s3_settings(endpoint))


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(store: BlobStore, name: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(name)])


async def test_put_read_delete(blobs: BlobStore) -> None:
    size = await blobs.put("file-abc", chunks(b"hello ", b"", b"world"), max_bytes=100)
    assert size == 11
    assert await read_all(blobs, "file-abc") == b"hello world"
    await blobs.delete("file-abc")
    with pytest.raises(GatewayError) as info:
        await read_all(blobs, "file-abc")
    assert info.value.kind is ErrorKind.CALLER_NOT_FOUND
    await blobs.delete("file-abc")  # a missing name is not an error


async def test_an_empty_blob(blobs: BlobStore) -> None:
    assert await blobs.put("empty", chunks(), max_bytes=10) == 0
    assert await read_all(blobs, "empty") == b""


async def test_a_blob_larger_than_one_upload_part_streams_through(blobs: BlobStore) -> None:
    part = os.urandom(1024 * 1024)
    count = PART_BYTES // len(part) + 2
    size = await blobs.put("big", chunks(*[part] * count), max_bytes=count * len(part))
    assert size == count * len(part)
    got = bytearray()
    async for chunk in blobs.read("big"):
        assert len(chunk) <= PART_BYTES  # read in pieces, never whole
        got += chunk
    assert got == part * count


async def test_past_the_cap_nothing_is_left_behind(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(GatewayError) as info:
        await blobs.put("capped", chunks(b"12345", b"6789"), max_bytes=8)
    assert info.value.kind is ErrorKind.CALLER_PAYLOAD_TOO_LARGE
    assert info.value.param == "file"
    with pytest.raises(GatewayError) as missing:
        await read_all(blobs, "capped")
    assert missing.value.kind is ErrorKind.CALLER_NOT_FOUND
    if isinstance(blobs, LocalBlobStore):
        assert os.listdir(tmp_path / "files") == []  # no temporary file either


async def test_a_failing_source_leaves_nothing_and_its_error_passes_through(
    blobs: BlobStore,
) -> None:
    class Gone(Exception):
        pass

    async def source() -> AsyncIterator[bytes]:
        yield b"partial"
        raise Gone

    with pytest.raises(Gone):
        await blobs.put("gone", source(), max_bytes=100)
    with pytest.raises(GatewayError):
        await read_all(blobs, "gone")


async def test_a_name_replaces_nothing_else(blobs: BlobStore) -> None:
    await blobs.put("one", chunks(b"1"), max_bytes=10)
    await blobs.put("two", chunks(b"2"), max_bytes=10)
    await blobs.delete("one")
    assert await read_all(blobs, "two") == b"2"


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 200])
async def test_names_are_never_paths(blobs: BlobStore, name: str) -> None:
    with pytest.raises(ValueError, match="not a blob name"):
        await blobs.put(name, chunks(b"x"), max_bytes=10)


async def test_the_store_being_away_is_a_dependency_error(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_bytes(b"")
    with pytest.raises(GatewayError) as info:
        await LocalBlobStore(blocked).put("x", chunks(b"1"), max_bytes=10)
    assert info.value.kind is ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE
    with socket.socket() as sock:  # bound, not listening: connects are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        closed = S3BlobStore.build(
            s3_settings(f"http://127.0.0.1:{port}", timeout_s=2, connect_timeout_s=1)
        )
        with pytest.raises(GatewayError) as s3_info:
            await closed.put("x", chunks(b"1"), max_bytes=10)
    assert s3_info.value.kind is ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE


async def test_sweep_removes_only_old_temporary_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    await store.put("kept", chunks(b"1"), max_bytes=10)
    old = tmp_path / ".part-old"
    old.write_bytes(b"x")
    os.utime(old, (1000, 1000))
    young = tmp_path / ".part-young"
    young.write_bytes(b"x")
    assert await store.sweep(before=2000) == 1
    assert sorted(os.listdir(tmp_path)) == [".part-young", "kept"]
