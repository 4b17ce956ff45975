"""The media store on both real backends: files under a temp directory, and S3 over HTTP against moto.

moto runs in its own process (its import-time warnings never reach this one). After a test IAM user is set up
through moto's IAM API, IAM authentication is switched on, so from then on moto recomputes the SigV4 signature
of every request (with botocore) and refuses a wrong one — our signer is checked by an independent
implementation on every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from supervisor.media import (
    FilesystemStore,
    MediaError,
    MediaNotFound,
    MediaStore,
    S3Store,
    sigv4_headers,
    store_from_settings,
)

KiB = 1024
MiB = 1024 * KiB
BAD_KEYS = ["../escape.bin", "/etc/passwd", "t1//x.bin", "t1/../../x.bin", "t1/a b.bin", "", "t1/~put-x"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class MotoS3:
    endpoint: str
    access_key: str
    secret_key: str


def _iam(client: httpx.Client, endpoint: str, **params: str) -> str:
    """One IAM query-API call (signed, though moto does not check signatures until auth is switched on)."""
    body = urlencode({**params, "Version": "2010-05-08"}).encode()
    headers = sigv4_headers("POST", endpoint + "/", {"content-type": "application/x-www-form-urlencoded"},
                            hashlib.sha256(body).hexdigest(), access_key="AKIASETUP", secret_key="setup",
                            region="us-east-1", service="iam", now=datetime.now(UTC))  # fmt: skip
    response = client.post(endpoint + "/", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """A moto server on a free loopback port with IAM authentication on, and the keys of a user allowed s3:*."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        with httpx.Client(timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get(f"{endpoint}/moto-api/").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            _iam(client, endpoint, Action="CreateUser", UserName="atende-media")
            created = _iam(client, endpoint, Action="CreateAccessKey", UserName="atende-media")
            access_key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", created)
            secret_key = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", created)
            assert access_key and secret_key, created
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            _iam(client, endpoint, Action="PutUserPolicy", UserName="atende-media", PolicyName="media",
                 PolicyDocument=json.dumps(policy))  # fmt: skip
            # From here on every request must carry a valid signature of a known key.
            assert client.post(f"{endpoint}/moto-api/reset-auth", content=b"0").status_code == 200
        yield MotoS3(endpoint, access_key.group(1), secret_key.group(1))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _s3_store(moto: MotoS3, *, bucket: str | None = None, secret_key: str | None = None) -> S3Store:
    store = store_from_settings("s3", root=None, s3_endpoint=moto.endpoint,
                                s3_bucket=bucket or f"atende-{uuid.uuid4().hex[:12]}", s3_access_key=moto.access_key,
                                s3_secret_key=secret_key or moto.secret_key)  # fmt: skip
    assert isinstance(store, S3Store)
    return store


@pytest.fixture(params=["file", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStore]:
    """Each real backend, empty."""
    if request.param == "file":
        made = store_from_settings("file", root=tmp_path / "media", s3_endpoint=None, s3_bucket=None,
                                   s3_access_key=None, s3_secret_key=None)  # fmt: skip
        assert isinstance(made, FilesystemStore)
    else:
        made = await _s3_store(request.getfixturevalue("moto_s3"))
        await made.ensure_bucket()
        await made.ensure_bucket()  # first-run setup may run on every start
    assert isinstance(made, MediaStore)
    yield made
    await made.aclose()


async def test_store_contract(store: MediaStore) -> None:
    data = os.urandom(MiB)
    key = f"t1/2024/05/{hashlib.sha256(data).hexdigest()}.bin"
    assert not await store.exists(key)
    with pytest.raises(MediaNotFound) as missing:
        await store.get(key)
    assert missing.value.code == "media_not_found"

    await store.put(key, data, "application/octet-stream")
    assert await store.exists(key)
    assert await store.get(key) == data
    await store.put(key, data, "application/octet-stream")  # a duplicate upload is a no-op overwrite
    assert await store.get(key) == data

    replacement = os.urandom(1000)
    await store.put(key, replacement, "image/jpeg")
    assert await store.get(key) == replacement

    neighbour = "t1/2024/05/neighbour.txt"
    await store.put(neighbour, b"still here", "text/plain")
    assert not await store.exists("t1/2024/05")  # a prefix is not an object
    with pytest.raises(MediaNotFound):
        await store.get("t1/2024")

    await store.delete(key)
    await store.delete(key)  # idempotent
    await store.delete("t9/never/stored.bin")
    assert not await store.exists(key)
    with pytest.raises(MediaNotFound):
        await store.get(key)
    assert await store.get(neighbour) == b"still here"

    for bad in BAD_KEYS:
        with pytest.raises(ValueError, match="media key"):
            await store.put(bad, b"x", "text/plain")
        with pytest.raises(ValueError, match="media key"):
            await store.get(bad)
        with pytest.raises(ValueError, match="media key"):
            await store.delete(bad)
        with pytest.raises(ValueError, match="media key"):
            await store.exists(bad)


async def test_concurrent_puts_of_one_key_leave_one_complete_object(store: MediaStore) -> None:
    payloads = [os.urandom(256 * KiB) for _ in range(8)]
    key = "t1/2024/05/race.bin"
    seen: list[bytes | None] = []

    async def read_while_writing() -> None:
        for _ in range(10):
            try:
                seen.append(await store.get(key))
            except MediaNotFound:
                seen.append(None)
            await asyncio.sleep(0)

    await asyncio.gather(*(store.put(key, payload, "application/octet-stream") for payload in payloads),
                         read_while_writing(), read_while_writing())  # fmt: skip
    assert await store.get(key) in payloads
    assert len(seen) == 20
    assert all(read is None or read in payloads for read in seen), "a reader saw a partial object"


# --- S3 only ----------------------------------------------------------------------------------------------------


async def test_s3_refuses_a_wrong_secret_through_its_signature_check(moto_s3: MotoS3) -> None:
    good = await _s3_store(moto_s3)
    await good.ensure_bucket()
    await good.put("t1/kept.bin", b"original", "application/octet-stream")
    forged = await _s3_store(moto_s3, bucket=good.bucket, secret_key="not the secret")
    unknown = S3Store(endpoint=moto_s3.endpoint, bucket=good.bucket, access_key="AKIAUNKNOWNKEY000000",
                      secret_key=moto_s3.secret_key)  # fmt: skip
    try:
        for attempt in (forged.put("t1/kept.bin", b"tampered", "text/plain"), forged.get("t1/kept.bin"),
                        forged.delete("t1/kept.bin")):  # fmt: skip
            with pytest.raises(MediaError) as caught:
                await attempt
            assert type(caught.value) is MediaError
            assert caught.value.code == "media_store_unavailable"
            assert "SignatureDoesNotMatch" in str(caught.value)
        with pytest.raises(MediaError, match="HTTP 403") as caught:
            await forged.exists("t1/kept.bin")  # HEAD: no body, so no S3 error code
        assert caught.value.code == "media_store_unavailable"
        with pytest.raises(MediaError, match="InvalidAccessKeyId") as caught:
            await unknown.get("t1/kept.bin")
        assert caught.value.code == "media_store_unavailable"
        assert await good.get("t1/kept.bin") == b"original"
    finally:
        for each in (good, forged, unknown):
            await each.aclose()


async def test_s3_missing_bucket_is_an_outage_not_a_missing_object(moto_s3: MotoS3) -> None:
    store = await _s3_store(moto_s3)  # no ensure_bucket
    try:
        for attempt in (store.get("t1/x.bin"), store.delete("t1/x.bin"), store.put("t1/x.bin", b"x", "text/plain")):
            with pytest.raises(MediaError, match="NoSuchBucket") as caught:
                await attempt
            assert type(caught.value) is MediaError
            assert caught.value.code == "media_store_unavailable"
    finally:
        await store.aclose()


async def test_s3_unreachable_endpoint_is_unavailable() -> None:
    store = S3Store(endpoint=f"http://127.0.0.1:{_free_port()}", bucket="media", access_key="k", secret_key="s",
                    timeout_s=2)  # fmt: skip
    try:
        with pytest.raises(MediaError, match="ConnectError") as caught:
            await store.get("t1/x.bin")
        assert caught.value.code == "media_store_unavailable"
    finally:
        await store.aclose()


async def test_s3_object_keeps_its_content_type(moto_s3: MotoS3) -> None:
    store = await _s3_store(moto_s3)
    try:
        await store.ensure_bucket()
        await store.put("t1/2024/05/photo.jpg", b"\xff\xd8\xff\xe0", "image/jpeg")
        url = f"{moto_s3.endpoint}/{store.bucket}/t1/2024/05/photo.jpg"
        headers = sigv4_headers("GET", url, {}, hashlib.sha256(b"").hexdigest(), access_key=moto_s3.access_key,
                                secret_key=moto_s3.secret_key, region="us-east-1", now=datetime.now(UTC))  # fmt: skip
        async with httpx.AsyncClient() as client:
            response = await client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
    finally:
        await store.aclose()


def _slow_down(status: int = 503) -> httpx.Response:
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    return httpx.Response(status, content=body, headers={"content-type": "application/xml"})


async def test_s3_retries_throttling_then_reports_it() -> None:
    """S3's 503 SlowDown is retried (3 attempts in all); an injected client is left open for its owner."""
    answers = [_slow_down(), _slow_down(500), httpx.Response(200), _slow_down(), _slow_down(), _slow_down()]
    seen: list[httpx.Request] = []

    def s3(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    async with httpx.AsyncClient(transport=httpx.MockTransport(s3)) as client:
        store = S3Store(endpoint="http://s3.test", bucket="media", access_key="k", secret_key="s", client=client)
        await store.put("t1/x.bin", b"payload", "application/octet-stream")
        assert len(seen) == 3
        assert all(request.content == b"payload" for request in seen)
        with pytest.raises(MediaError, match="HTTP 503 SlowDown: Please reduce") as caught:
            await store.get("t1/x.bin")
        assert caught.value.code == "media_store_unavailable"
        assert len(seen) == 6
        await store.aclose()
        assert not client.is_closed


# --- filesystem only --------------------------------------------------------------------------------------------


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if not path.is_dir())


async def test_filesystem_failed_write_leaves_no_object(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "media")
    await store.put("t1/2024/05/kept.bin", b"original", "application/octet-stream")
    data = os.urandom(MiB)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # A real partial write: the kernel stops the temp file at 256 KiB with EFBIG (Python ignores SIGXFSZ).
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * KiB, hard))
    try:
        with pytest.raises(MediaError) as new:
            await store.put("t1/2024/05/new.bin", data, "application/octet-stream")
        with pytest.raises(MediaError) as overwrite:
            await store.put("t1/2024/05/kept.bin", data, "application/octet-stream")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    for caught in (new, overwrite):
        assert caught.value.code == "media_store_unavailable"
        assert "File too large" in str(caught.value)
    assert not await store.exists("t1/2024/05/new.bin")
    assert await store.get("t1/2024/05/kept.bin") == b"original"
    assert _files(store.root) == ["t1/2024/05/kept.bin"]  # no temp file left behind


async def test_filesystem_modes_whatever_the_umask(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "media")
    previous = os.umask(0o077)
    try:
        await store.put("t1/2024/05/photo.jpg", b"\xff\xd8\xff", "image/jpeg")
    finally:
        os.umask(previous)
    for directory in ("", "t1", "t1/2024", "t1/2024/05"):
        assert (store.root / directory).stat().st_mode & 0o777 == 0o750, directory
    assert (store.root / "t1/2024/05/photo.jpg").stat().st_mode & 0o777 == 0o640


async def test_filesystem_never_follows_a_key_outside_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not media")
    store = FilesystemStore(tmp_path / "media")
    store.root.mkdir()
    (store.root / "t1").symlink_to(outside)
    with pytest.raises(ValueError, match="outside the media root"):
        await store.put("t1/x.bin", b"x", "application/octet-stream")
    with pytest.raises(ValueError, match="outside the media root"):
        await store.get("t1/secret.txt")
    with pytest.raises(ValueError, match="outside the media root"):
        await store.exists("t1/secret.txt")
    with pytest.raises(ValueError, match="outside the media root"):
        await store.delete("t1/secret.txt")
    assert sorted(path.name for path in outside.iterdir()) == ["secret.txt"]


async def test_filesystem_symlink_loop_is_an_outage_not_a_crash(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "media")
    store.root.mkdir()
    (store.root / "loop").symlink_to(store.root / "loop")
    with pytest.raises(MediaError) as raised:
        await store.get("loop/x.bin")
    assert raised.value.code == "media_store_unavailable"


async def test_filesystem_concurrent_puts_leave_no_temp_files(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "media")
    payloads = [os.urandom(64 * KiB) for _ in range(16)]
    await asyncio.gather(*(store.put(f"t{i % 2 + 1}/2024/05/same.bin", payload, "application/octet-stream")
                           for i, payload in enumerate(payloads)))  # fmt: skip
    assert _files(store.root) == ["t1/2024/05/same.bin", "t2/2024/05/same.bin"]
    assert await store.get("t1/2024/05/same.bin") in payloads[0::2]
    assert await store.get("t2/2024/05/same.bin") in payloads[1::2]
