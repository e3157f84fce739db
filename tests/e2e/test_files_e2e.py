"""The Files API against a real ``sluice serve``, with the official openai SDK: the local
directory backend (the session gateway) and the S3 backend (a gateway of its own, over a
moto S3 server on loopback)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import MAX_BODY_BYTES, stop_gateway
from tests.e2e.support import Gateway, gateway_config, start_gateway
from tests.s3_server import ACCESS_KEY, SECRET_KEY, moto_s3

pytestmark = pytest.mark.e2e


async def test_an_upload_larger_than_the_request_body_limit(
    gateway: Gateway, aclient: openai.AsyncOpenAI
) -> None:
    data = os.urandom(MAX_BODY_BYTES * 16)  # files have their own cap (files.max_file_bytes)
    made = await aclient.files.create(file=("corpus.bin", data), purpose="user_data")
    assert made.bytes == len(data)
    assert (await aclient.files.content(made.id)).content == data
    assert made.id in [f.id async for f in aclient.files.list(purpose="user_data")]
    stored = gateway.data_dir / "files" / made.id
    assert stored.stat().st_size == len(data)
    assert (await aclient.files.delete(made.id)).deleted
    assert not stored.exists()
    with pytest.raises(openai.NotFoundError):
        await aclient.files.retrieve(made.id)


async def test_the_s3_backend(
    e2e_dir: Path, mock_port: int, down_port: int, echo_port: int
) -> None:
    import boto3

    with moto_s3("sluice-e2e") as endpoint:
        config = gateway_config(mock_port, down_port, echo_port) + (
            "files:\n"
            "  backend: s3\n"
            "  max_file_bytes: 10485760\n"
            "  s3:\n"
            "    bucket: sluice-e2e\n"
            f"    endpoint_url: {endpoint}\n"
            "    access_key_id: env:E2E_S3_KEY\n"
            "    secret_access_key: env:E2E_S3_SECRET\n"
            "    prefix: gw\n"
        )
        gw = start_gateway(
            e2e_dir / "files-s3",
            mock_port,
            down_port,
            echo_port,
            config_text=config,
            E2E_S3_KEY=ACCESS_KEY,
            E2E_S3_SECRET=SECRET_KEY,
        )
        bucket = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
        try:
            async with openai.AsyncOpenAI(
                base_url=gw.v1, api_key=gw.key, max_retries=0, timeout=20.0
            ) as client:
                data = os.urandom(9 * 1024 * 1024)  # more than one multipart upload part
                made = await client.files.create(file=("big.bin", data), purpose="batch")
                listed = bucket.list_objects_v2(Bucket="sluice-e2e")["Contents"]
                assert [(o["Key"], o["Size"]) for o in listed] == [(f"gw/{made.id}", len(data))]
                assert (await client.files.content(made.id)).content == data
                await client.files.delete(made.id)
                assert bucket.list_objects_v2(Bucket="sluice-e2e")["KeyCount"] == 0
                with pytest.raises(openai.APIStatusError) as info:  # over files.max_file_bytes
                    await client.files.create(file=("big.bin", data + data), purpose="batch")
                assert info.value.status_code == 413
                chunked = await _chunked_upload(gw, 11 * 1024 * 1024)  # no content-length
                assert chunked.status_code == 413, chunked.text
                assert chunked.json()["error"]["param"] == "file"
                assert bucket.list_objects_v2(Bucket="sluice-e2e")["KeyCount"] == 0
                assert not (gw.data_dir / "files").exists()
        finally:
            stop_gateway(gw)


async def _chunked_upload(gw: Gateway, size: int) -> httpx.Response:
    """A multipart upload of ``size`` bytes sent chunked: the cap is met while reading."""

    async def body() -> AsyncIterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        )
        for _ in range(size // 65536):
            yield b"x" * 65536
        yield b"\r\n--b--\r\n"

    async with httpx.AsyncClient(timeout=20.0) as client:
        return await client.post(
            f"{gw.v1}/files",
            content=body(),
            headers={
                "authorization": f"Bearer {gw.key}",
                "content-type": "multipart/form-data; boundary=b",
            },
        )
