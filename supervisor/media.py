"""The media store: the bytes of every image, audio, video and document Atende receives or sends.

Session hosts put inbound media here after downloading it through their driver and read agents' uploads back to
send them; the API stores uploads here and serves bytes to the inbox. Two backends speak one protocol,
:class:`MediaStore`:

- :class:`FilesystemStore` — a directory shared by the processes of one machine (or a mounted volume); the default.
- :class:`S3Store` — any S3-compatible service (AWS, MinIO, Ceph, R2) over path-style HTTP, signed with AWS
  Signature Version 4 by :func:`sigv4_headers` (no SDK).

Guarantees of every store: keys are checked by :func:`check_key` before any I/O; a reader never sees a partial
object (``put`` is atomic, the last complete ``put`` wins); ``delete`` is idempotent; a missing object raises
:class:`MediaNotFound`; any other failure of the backend raises :class:`MediaError` with
``code="media_store_unavailable"``.

Keys come from :func:`media_key` (``t<tenant>/<yyyy>/<mm>/<sha256>.<ext>``), so one tenant's duplicate upload
within a month lands on the same object and costs nothing.

The media policy (:func:`check_media`, :func:`sniff_mime`, :func:`kind_for_mime`) is pure: it encodes what WhatsApp
itself accepts (Cloud API media types and sizes) and refuses files whose bytes contradict their declared type.

This module must not import ``saas``: the API depends on it, not the other way round.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import hashlib
import hmac
import os
import random
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol, runtime_checkable
from urllib.parse import quote, unquote, urlsplit

import httpx

from supervisor.policy import RestartPolicy, backoff_delay
from supervisor.wire import MEDIA_KINDS

__all__ = [
    "ALLOWED_MIME",
    "MAX_BYTES",
    "MAX_KEY_LENGTH",
    "MEDIA_KINDS",
    "FilesystemStore",
    "MediaError",
    "MediaNotFound",
    "MediaRejected",
    "MediaStore",
    "S3Store",
    "base_mime",
    "check_key",
    "check_media",
    "kind_for_mime",
    "media_key",
    "sigv4_headers",
    "sniff_mime",
    "store_content",
    "store_from_settings",
]

KiB: Final = 1024
MiB: Final = 1024 * KiB


# --- errors -----------------------------------------------------------------------------------------------------


class MediaError(Exception):
    """A media operation failed; ``code`` is stable (``media_store_unavailable`` for a backend failure)."""

    code: str = "media_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class MediaNotFound(MediaError):
    """No object is stored under ``key``."""

    code = "media_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"no media stored under {key!r}")
        self.key = key


_REJECTION_CODES: Final = frozenset({"media_too_large", "media_type_not_allowed", "media_type_mismatch", "media_empty"})


class MediaRejected(MediaError):
    """The media breaks the policy; ``limit`` is the byte limit that was exceeded (``media_too_large`` only)."""

    def __init__(self, message: str, *, code: str, limit: int | None = None) -> None:
        if code not in _REJECTION_CODES:
            raise ValueError(f"unknown media rejection code {code!r}")
        super().__init__(message, code=code)
        self.limit = limit


def _unavailable(message: str) -> MediaError:
    return MediaError(message, code="media_store_unavailable")


# --- keys -------------------------------------------------------------------------------------------------------

MAX_KEY_LENGTH: Final = 512
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ValueError.

    A key is ``/``-separated segments of ``[A-Za-z0-9._-]``, none empty, ``.`` or ``..``, at most 512 characters:
    no absolute path, no traversal, nothing a filesystem or a URL would interpret.
    """
    if not key:
        raise ValueError("a media key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"media key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise ValueError(f"invalid media key {key!r}: bad segment {segment!r}")
    return key


_EXTENSIONS: Final[dict[str, str]] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/mpeg": "mp3",
    "audio/amr": "amr",
    "audio/ogg": "ogg",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/zip": "zip",
}


async def store_content(store: MediaStore, tenant_id: int, data: bytes, mime: str) -> tuple[str, str]:
    """Put ``data`` under its content-addressed key (see :func:`media_key`); returns ``(key, sha256 hex)``. The
    digest is computed off the event loop: files run to 100 MiB."""
    digest = (await asyncio.to_thread(hashlib.sha256, data)).hexdigest()
    key = media_key(tenant_id, digest, mime, now=datetime.now(UTC))
    await store.put(key, data, mime)
    return key, digest


def media_key(tenant_id: int, sha256_hex: str, mime: str, *, now: datetime) -> str:
    """The content-addressed key ``t<tenant_id>/<yyyy>/<mm>/<sha256>.<ext>`` (UTC month, ``bin`` if the mime is unknown).

    The same bytes of one tenant in one month always get the same key, so storing a duplicate is a no-op
    overwrite; tenants never share objects.
    """
    if isinstance(tenant_id, bool) or tenant_id < 1:
        raise ValueError(f"tenant id must be a positive integer, not {tenant_id!r}")
    digest = sha256_hex.lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    month = now.astimezone(UTC)
    ext = _EXTENSIONS.get(base_mime(mime), "bin")
    return check_key(f"t{tenant_id}/{month:%Y}/{month:%m}/{digest}.{ext}")


# --- the protocol -----------------------------------------------------------------------------------------------


@runtime_checkable
class MediaStore(Protocol):
    """Where media bytes live. Every method checks the key with :func:`check_key` first (ValueError)."""

    async def put(self, key: str, data: bytes, mime: str) -> None:
        """Store ``data`` under ``key`` atomically: readers see the old object or the whole new one, never a part."""

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; raises MediaNotFound."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""

    async def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""


# --- filesystem -------------------------------------------------------------------------------------------------

_DIR_MODE: Final = 0o750
_FILE_MODE: Final = 0o640
# "~" never appears in a key, so a temp file can never be mistaken for an object.
_TEMP_PREFIX: Final = "~put-"


class FilesystemStore:
    """Objects as files under ``root`` (a directory shared by the processes of one machine, or a volume).

    ``put`` writes a temp file in the target's directory, fsyncs it and ``os.replace``-s it over the target, so a
    crash leaves either the old object or the new one (and at worst a ``~put-*`` temp file, never read as an
    object). Directories are created as needed with mode 0o750, files get 0o640 whatever the umask. Blocking
    I/O runs in a worker thread. A key whose resolved path leaves ``root`` (a planted symlink) raises ValueError.
    Empty directories are left in place after ``delete`` (removing them would race with a concurrent ``put``).
    The ``mime`` of a ``put`` is not kept: the key's extension and the message that refers to it carry it.
    """

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self.root)!r})"

    async def put(self, key: str, data: bytes, mime: str) -> None:
        check_key(key)
        try:
            await asyncio.to_thread(self._put, key, data)
        except OSError as exc:
            raise _unavailable(f"could not store {key!r}: {exc}") from exc

    async def get(self, key: str) -> bytes:
        check_key(key)
        try:
            return await asyncio.to_thread(self._get, key)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MediaNotFound(key) from None
        except OSError as exc:
            raise _unavailable(f"could not read {key!r}: {exc}") from exc

    async def delete(self, key: str) -> None:
        check_key(key)
        try:
            await asyncio.to_thread(self._delete, key)
        except OSError as exc:
            raise _unavailable(f"could not delete {key!r}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        check_key(key)
        return await asyncio.to_thread(self._exists, key)

    async def aclose(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        try:
            path = (self.root / key).resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop under the root (RuntimeError before Python 3.13)
            raise _unavailable(f"media key {key!r} cannot be resolved: {exc}") from exc
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"media key {key!r} resolves outside the media root")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        _make_dirs(path.parent)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), _FILE_MODE)
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _fsync_dir(path.parent)

    def _get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def _delete(self, key: str) -> None:
        path = self._path(key)
        # A directory at the key is not an object: nothing to delete.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            path.unlink()

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()


def _make_dirs(directory: Path) -> None:
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, _DIR_MODE)
        except FileExistsError:
            continue  # a concurrent put made it (a file in the way fails on the next step)
        os.chmod(path, _DIR_MODE)  # the umask may have taken bits away


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort (some filesystems refuse fsync on a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# --- S3 ---------------------------------------------------------------------------------------------------------

_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_UNRESERVED: Final = "-_.~"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# S3 asks clients to retry 500 InternalError and 503 SlowDown; every request of ours is idempotent.
_ATTEMPTS: Final = 3
_RETRY_STATUS: Final = frozenset({500, 502, 503, 504})
_RETRY_BACKOFF: Final = RestartPolicy(backoff_min_s=0.05, backoff_max_s=1.0, jitter=0.5)


def _uri_encode(value: str) -> str:
    """SigV4 URI encoding: every byte except the unreserved characters is percent-encoded (uppercase hex)."""
    return quote(value, safe=_UNRESERVED)


def _canonical_query(query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((_uri_encode(unquote(name)), _uri_encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _host(url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"URL without a host: {url!r}")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    url: str,
    headers: dict[str, str],
    payload_sha256: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "s3",
    now: datetime,
) -> dict[str, str]:
    """The headers of a request signed with AWS Signature Version 4 (header-based, ``AWS4-HMAC-SHA256``).

    ``url`` is the URL as sent: its path must already be URI-encoded (S3 paths are signed as they are, neither
    normalized nor encoded twice). ``headers`` are the extra headers to sign (``content-type``, ``range`` ...);
    never pass hop-by-hop headers a client may rewrite. ``payload_sha256`` is the hex sha256 of the body (or
    ``UNSIGNED-PAYLOAD``). Returns every header to send, names in lowercase: ``headers`` plus ``host`` (unless
    given), ``x-amz-date``, ``x-amz-content-sha256`` and ``authorization``. Pure: no clock, no I/O.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    stamp = now.astimezone(UTC)
    amz_date = f"{stamp:%Y%m%dT%H%M%SZ}"
    date = f"{stamp:%Y%m%d}"
    parts = urlsplit(url)

    signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    signed.setdefault("host", _host(url))
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_sha256
    names = sorted(signed)
    signed_names = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            parts.path or "/",
            _canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            signed_names,
            payload_sha256,
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), date), region), service), "aws4_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={signed_names},Signature={signature}"
    )
    return signed


_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_ERROR_MESSAGE = re.compile(rb"<Message>([^<]{0,300})</Message>")


def _s3_error(response: httpx.Response) -> tuple[str, str]:
    """The S3 error code and message of a failed response (empty when the body has none, as on HEAD)."""
    body = response.content
    code = _ERROR_CODE.search(body)
    message = _ERROR_MESSAGE.search(body)
    return (
        code.group(1).decode(errors="replace") if code else "",
        message.group(1).decode(errors="replace") if message else "",
    )


class S3Store:
    """Objects in one bucket of an S3-compatible service, addressed path-style (``{endpoint}/{bucket}/{key}``).

    Every request is signed with SigV4 and carries the payload's sha256, so the service verifies the body it
    stored (a corrupted upload is refused, never kept). A single PUT is atomic on S3: readers see the old or the
    new object. Transient failures (HTTP 500/502/503/504, network errors) are retried, 3 attempts in all with
    jittered backoff: every request is idempotent (a PUT carries the whole object). A missing key raises
    MediaNotFound; a missing bucket, refused credentials, persistent throttling or an unreachable service
    raise ``MediaError(code="media_store_unavailable")`` naming the S3 error code.
    """

    __slots__ = ("_access_key", "_client", "_owns_client", "_secret_key", "bucket", "endpoint", "region")

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        timeout_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"S3 endpoint must be an http(s) URL without query, not {endpoint!r}")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        if not access_key or not secret_key:
            raise ValueError("S3 access key and secret key must not be empty")
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout_s)

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    async def put(self, key: str, data: bytes, mime: str) -> None:
        response = await self._request("PUT", check_key(key), data, {"content-type": mime})
        if response.status_code != 200:
            raise self._failure("PUT", key, response)

    async def get(self, key: str) -> bytes:
        response = await self._request("GET", check_key(key))
        if response.status_code == 200:
            return response.content
        if response.status_code == 404 and _s3_error(response)[0] in ("NoSuchKey", ""):
            raise MediaNotFound(key)
        raise self._failure("GET", key, response)

    async def delete(self, key: str) -> None:
        response = await self._request("DELETE", check_key(key))
        if response.status_code in (200, 204):
            return
        if response.status_code == 404 and _s3_error(response)[0] == "NoSuchKey":
            return
        raise self._failure("DELETE", key, response)

    async def exists(self, key: str) -> bool:
        # HEAD answers have no body: a 404 cannot tell a missing key from a missing bucket.
        response = await self._request("HEAD", check_key(key))
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._failure("HEAD", key, response)

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (first-run setup); needs ``s3:CreateBucket`` only when it is missing."""
        response = await self._request("HEAD", None)
        if response.status_code == 200:
            return
        if response.status_code != 404:
            raise self._failure("HEAD", None, response)
        body = b""
        if self.region != "us-east-1":  # AWS wants the region spelled out everywhere else
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.region}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        response = await self._request("PUT", None, body)
        if response.status_code == 200:
            return
        if response.status_code == 409 and _s3_error(response)[0] == "BucketAlreadyOwnedByYou":
            return
        raise self._failure("PUT", None, response)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _url(self, key: str | None) -> str:
        base = f"{self.endpoint}/{_uri_encode(self.bucket)}"
        if key is None:
            return base
        return base + "/" + "/".join(_uri_encode(segment) for segment in key.split("/"))

    async def _request(
        self, method: str, key: str | None, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        url = self._url(key)
        payload_sha256 = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        what = "bucket" if key is None else repr(key)
        attempt = 0
        while True:
            signed = sigv4_headers(method, url, headers or {}, payload_sha256, access_key=self._access_key,
                                   secret_key=self._secret_key, region=self.region, now=datetime.now(UTC))  # fmt: skip
            try:
                response = await self._client.request(method, url, content=body, headers=signed)
            except httpx.TransportError as exc:
                if attempt + 1 >= _ATTEMPTS:
                    raise _unavailable(f"S3 {method} {what} failed: {type(exc).__name__}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise _unavailable(f"S3 {method} {what} failed: {type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code not in _RETRY_STATUS or attempt + 1 >= _ATTEMPTS:
                    return response
            await asyncio.sleep(backoff_delay(_RETRY_BACKOFF, attempt, random.random()))  # noqa: S311 - jitter
            attempt += 1

    def _failure(self, method: str, key: str | None, response: httpx.Response) -> MediaError:
        code, message = _s3_error(response)
        what = f"bucket {self.bucket!r}" if key is None else f"{key!r} in bucket {self.bucket!r}"
        detail = (f" {code}" if code else "") + (f": {message}" if message else "")
        return _unavailable(f"S3 {method} {what} failed: HTTP {response.status_code}{detail}")


def store_from_settings(
    kind: str,
    *,
    root: Path | None,
    s3_endpoint: str | None,
    s3_bucket: str | None,
    s3_access_key: str | None,
    s3_secret_key: str | None,
    s3_region: str = "us-east-1",
) -> MediaStore:
    """The configured store: ``"file"`` (needs ``root``) or ``"s3"`` (needs endpoint, bucket and both keys).

    Raises ValueError naming every missing setting or the unknown kind.
    """
    if kind == "file":
        if root is None:
            raise ValueError("the file media store needs root")
        return FilesystemStore(root)
    if kind == "s3":
        given = {"s3_endpoint": s3_endpoint, "s3_bucket": s3_bucket, "s3_access_key": s3_access_key,
                 "s3_secret_key": s3_secret_key}  # fmt: skip
        missing = [name for name, value in given.items() if not value]
        if missing:
            raise ValueError(f"the s3 media store needs {', '.join(missing)}")
        assert s3_endpoint and s3_bucket and s3_access_key and s3_secret_key
        return S3Store(endpoint=s3_endpoint, bucket=s3_bucket, access_key=s3_access_key, secret_key=s3_secret_key,
                       region=s3_region)  # fmt: skip
    raise ValueError(f"unknown media store kind {kind!r} (expected 'file' or 's3')")


# --- policy -----------------------------------------------------------------------------------------------------

_DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX: Final = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_AUDIO: Final = frozenset({"audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg"})

ALLOWED_MIME: Final[dict[str, frozenset[str]]] = {
    "image": frozenset({"image/jpeg", "image/png", "image/webp"}),
    "sticker": frozenset({"image/webp"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "audio": _AUDIO,
    "voice": _AUDIO,
    "document": frozenset(
        {
            "application/pdf",
            "text/plain",
            "text/csv",
            "application/msword",
            _DOCX,
            "application/vnd.ms-excel",
            _XLSX,
            "application/vnd.ms-powerpoint",
            _PPTX,
            "application/zip",
        }
    ),
}

MAX_BYTES: Final[dict[str, int]] = {
    "image": 5 * MiB,
    "sticker": 500 * KiB,
    "video": 16 * MiB,
    "audio": 16 * MiB,
    "voice": 16 * MiB,
    "document": 100 * MiB,
}

# Types that one signature cannot tell apart: a zip may be an OOXML file whose marker lies past the sniffed
# prefix, the legacy Office formats share one container, and m4a files often carry an mp4 brand.
_FAMILIES: Final = (
    frozenset({"application/zip", _DOCX, _XLSX, _PPTX}),
    frozenset({"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}),
    frozenset({"video/mp4", "video/3gpp", "audio/mp4"}),
)
_TEXT: Final = frozenset({"text/plain", "text/csv"})
_SNIFF_TEXT_BYTES: Final = 4 * KiB
_SNIFF_ZIP_BYTES: Final = 2 * KiB


def base_mime(mime: str) -> str:
    """``"Audio/OGG; codecs=opus"`` -> ``"audio/ogg"``."""
    return mime.partition(";")[0].strip().lower()


def kind_for_mime(mime: str) -> str | None:
    """The message kind for an allowed MIME type (``image/webp`` is an image: stickers are declared), else None."""
    base = base_mime(mime)
    for kind in ("image", "video", "audio", "document"):
        if base in ALLOWED_MIME[kind]:
            return kind
    return None


def sniff_mime(data: bytes) -> str | None:
    """The MIME type the leading bytes of ``data`` prove, or None if no known signature matches.

    Reports ``image/gif`` although it is not allowed; old Office files all answer ``application/msword``;
    text means valid UTF-8 without NUL in the first 4 KiB.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data[4:8] == b"ftyp" and len(data) >= 12:
        brand = data[8:12]
        if brand.startswith(b"3gp"):
            return "video/3gpp"
        return "audio/mp4" if brand == b"M4A " else "video/mp4"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"ID3"):
        return "audio/mpeg"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        layer = (data[1] >> 1) & 0b11
        if layer == 0b01:  # MPEG audio layer III frame sync (FF FB, FF F3, FF F2 ...)
            return "audio/mpeg"
        if data[1] & 0xF6 == 0xF0:  # ADTS: 12-bit sync, layer 00 (FF F1, FF F9 ...)
            return "audio/aac"
    if data.startswith(b"#!AMR"):
        return "audio/amr"
    if data.startswith(b"PK\x03\x04"):
        head = data[:_SNIFF_ZIP_BYTES]
        if b"word/" in head:
            return _DOCX
        if b"xl/" in head:
            return _XLSX
        if b"ppt/" in head:
            return _PPTX
        return "application/zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/msword"
    if data and _is_utf8_text(data):
        return "text/plain"
    return None


def _is_utf8_text(data: bytes) -> bool:
    head = data[:_SNIFF_TEXT_BYTES]
    if b"\x00" in head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # A character cut in half by the 4 KiB window is fine: only a complete input must end cleanly.
        decoder.decode(head, final=len(data) <= _SNIFF_TEXT_BYTES)
    except UnicodeDecodeError:
        return False
    return True


def _compatible(sniffed: str, declared: str) -> bool:
    return sniffed == declared or any(sniffed in family and declared in family for family in _FAMILIES)


def check_media(
    kind: str, mime: str, data: bytes | None = None, *, size: int | None = None, max_bytes: int | None = None
) -> str:
    """Validate media against what WhatsApp accepts; return the normalized MIME (lowercase, no parameters).

    Checks, in order: the kind exists and allows the declared type (``media_type_not_allowed``); the size
    (``len(data)``, else ``size``; unchecked when neither is given) is not zero (``media_empty``) nor above
    ``min(MAX_BYTES[kind], max_bytes)`` (``media_too_large``, ``limit`` set); and when ``data`` is given, its
    bytes prove a type compatible with the declared one (``media_type_mismatch``). Every allowed binary type
    has a signature, so unrecognizable bytes are a mismatch (a renamed executable is refused). Declared text
    (plain or CSV) must have no NUL in its first 4 KiB; it need not be UTF-8 (Windows-1252 CSV exports are
    common) and a text that happens to start like a signature (``ID3,...``) is still text. Raises MediaRejected, or ValueError for contradictory arguments.
    """
    if kind not in ALLOWED_MIME:
        raise MediaRejected(f"unknown media kind {kind!r}", code="media_type_not_allowed")
    base = base_mime(mime)
    if base not in ALLOWED_MIME[kind]:
        raise MediaRejected(f"{base or mime!r} is not allowed for {kind} messages", code="media_type_not_allowed")
    if data is not None:
        if size is not None and size != len(data):
            raise ValueError(f"size {size} does not match the {len(data)} bytes given")
        size = len(data)
    if size is not None:
        if size < 0:
            raise ValueError(f"negative size {size}")
        if size == 0:
            raise MediaRejected(f"the {kind} is empty", code="media_empty")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"negative max_bytes {max_bytes}")
        limit = MAX_BYTES[kind] if max_bytes is None else min(MAX_BYTES[kind], max_bytes)
        if size > limit:
            raise MediaRejected(f"the {kind} is {size} bytes; the limit is {limit}", code="media_too_large",
                                limit=limit)  # fmt: skip
    if data is not None:
        if base in _TEXT:
            # Text has no signature and may be in a legacy 8-bit encoding: binary (NUL bytes) is what gives it away.
            if b"\x00" in data[:_SNIFF_TEXT_BYTES]:
                raise MediaRejected(f"declared {base} but the content is binary", code="media_type_mismatch")
            return base
        sniffed = sniff_mime(data)
        if sniffed is None:
            raise MediaRejected(f"declared {base} but the content is not recognizable", code="media_type_mismatch")
        if not _compatible(sniffed, base):
            raise MediaRejected(f"declared {base} but the content is {sniffed}", code="media_type_mismatch")
    return base
