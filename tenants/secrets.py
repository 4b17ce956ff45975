"""Secrets at rest: envelope encryption with a data key per tenant, wrapped by a master key that can rotate.

Three layers, each guarding the next:

* **Master keys** come from the environment (``ATENDE_MASTER_KEY``, plus ``ATENDE_PREVIOUS_MASTER_KEYS`` during a
  rotation) and are never stored. Each is identified by its ``kid``, a hash prefix of the key.
* **Data keys** are random 256-bit AES-GCM keys, one or more versions per tenant, stored only *wrapped* (encrypted
  by a master key) in ``public.tenant_keys``. The newest version encrypts; older ones still decrypt.
* **Secrets** (driver credentials, API tokens, webhook secrets) are encrypted with the tenant's data key and live in
  the tenant's own schema.

Why envelope encryption: a database dump alone reveals nothing; rotating the master key re-wraps one 60-byte row
per data key instead of rewriting every ciphertext; and a ciphertext copied into another tenant's row fails to
decrypt, because it needs that tenant's data key *and* names the tenant in its associated data.

Master key format: any string of at least 32 characters, always run through HKDF-SHA256 to get the 256-bit key.
There is no guessing whether a string "is base64" (a 44-character passphrase may parse as base64 too), so whatever
a secret manager produces works as-is. HKDF is not a password hash, so the string must be random: generate it with
``python -c "import secrets; print(secrets.token_urlsafe(32))"`` (256 bits).

Ciphertext format (version 1), all integers big-endian::

    0xA1 | data key version (uint32) | nonce (12 bytes) | AES-256-GCM ciphertext + tag (16 bytes)

The associated data is ``b"atende.secret\\0" + tenant id (int64) + the 5 header bytes``, so neither the tenant nor
the header can be changed without the tag failing. The first byte is not ASCII, which tells a sealed value from a
plaintext one written before encryption existed (see :func:`is_sealed`).

Nothing here logs or prints key material, and no object's ``repr`` shows any.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenants.db import pool
from tenants.errors import AtendeError, Conflict, InvalidInput, TenantNotFound

__all__ = [
    "FORMAT_MAGIC",
    "OVERHEAD",
    "DataKey",
    "DataKeyNotFound",
    "MasterKeyInvalid",
    "MasterKeyUnknown",
    "MasterKeys",
    "RotationReport",
    "SecretCorrupt",
    "TenantCipher",
    "TenantRotation",
    "clear_key_cache",
    "data_key",
    "decrypt",
    "derive_master_key",
    "encrypt",
    "is_sealed",
    "key_version",
    "keys_rotate_main",
    "master_kid",
    "rotate_data_key",
    "rotate_master_keys",
    "tenant_cipher",
]

logger = logging.getLogger("atende.secrets")

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    #: An asyncpg connection: a plain one, or one borrowed from the pool.
    Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy[Any]

FORMAT_MAGIC = 0xA1
_HEADER = struct.Struct(">BI")  # magic, data key version
_NONCE_SIZE = 12
_TAG_SIZE = 16
_KEY_SIZE = 32
#: Bytes a sealed secret adds to its plaintext.
OVERHEAD = _HEADER.size + _NONCE_SIZE + _TAG_SIZE
_WRAPPED_SIZE = _NONCE_SIZE + _KEY_SIZE + _TAG_SIZE

_MASTER_MIN_CHARS = 32
_MASTER_SALT = b"atende.master-key"
_MASTER_INFO = b"atende master key v1"
_SECRET_AAD = b"atende.secret\0"
_WRAP_AAD = b"atende.data-key\0"
_KID_PREFIX = b"atende.master-kid\0"

_CACHE_SIZE = 4096
_ROTATE_ATTEMPTS = 5


# -- errors -----------------------------------------------------------------------------------------------------


class MasterKeyInvalid(InvalidInput):
    """A configured master key is malformed (too short, empty); the message never includes the key."""

    code = "master_key_invalid"
    title = "Invalid master key"


class MasterKeyUnknown(AtendeError):
    """A data key is wrapped by a master key this process was not given — a deployment error, not bad input."""

    code = "master_key_unknown"
    status = 500
    title = "Master key unknown"


class SecretCorrupt(AtendeError):
    """A ciphertext or wrapped key failed authentication: tampered, truncated, or copied from another tenant."""

    code = "secret_corrupt"
    status = 500
    title = "Secret corrupt"


class DataKeyNotFound(AtendeError):
    """The tenant has no data key and the caller asked not to create one."""

    code = "data_key_not_found"
    status = 500
    title = "Data key not found"


# -- master keys ------------------------------------------------------------------------------------------------


def derive_master_key(secret: str) -> bytes:
    """The 256-bit master key for a configured string (HKDF-SHA256; see the module docstring for why)."""
    if len(secret) < _MASTER_MIN_CHARS:
        raise MasterKeyInvalid(
            f"a master key must be a string of at least {_MASTER_MIN_CHARS} random characters"
            ' (python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_SIZE, salt=_MASTER_SALT, info=_MASTER_INFO)
    return hkdf.derive(secret.encode())


def master_kid(key: bytes) -> str:
    """A master key's id: 16 hex characters of a domain-separated SHA-256, safe to store and print."""
    return hashlib.sha256(_KID_PREFIX + key).hexdigest()[:16]


def _wrap_aad(tenant_id: int, version: int) -> bytes:
    # Binds a wrapped key to its row, so a wrapped key copied to another tenant or version fails to unwrap.
    return _WRAP_AAD + struct.pack(">qI", tenant_id, version)


class MasterKeys:
    """The active master key (wraps new and re-wrapped data keys) and previous ones (still unwrap).

    Build it once per process with :meth:`from_strings`. It is picklable (raw key bytes only), but prefer passing the
    configured strings to another process and building it there.
    """

    __slots__ = ("_keys", "active_kid")

    def __init__(self, active: bytes, previous: Iterable[bytes] = ()) -> None:
        keys = (*previous, active)
        if any(len(key) != _KEY_SIZE for key in keys):
            raise MasterKeyInvalid(f"a derived master key must be {_KEY_SIZE} bytes")
        self._keys: dict[str, bytes] = {master_kid(key): key for key in keys}
        self.active_kid: str = master_kid(active)

    @classmethod
    def from_strings(cls, active: str, previous: Sequence[str] = ()) -> MasterKeys:
        """From ``ATENDE_MASTER_KEY`` and ``ATENDE_PREVIOUS_MASTER_KEYS`` (each >= 32 random characters)."""
        if isinstance(previous, str):  # a lone string is a Sequence[str] of characters: refuse the slip
            raise TypeError("previous must be a sequence of keys, not one string")
        return cls(derive_master_key(active), [derive_master_key(p) for p in previous])

    @property
    def kids(self) -> frozenset[str]:
        """Ids of every master key this object can unwrap with."""
        return frozenset(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __repr__(self) -> str:
        return f"MasterKeys(active_kid={self.active_kid!r}, kids={sorted(self._keys)!r})"

    def wrap(self, material: bytes, *, tenant_id: int, version: int) -> bytes:
        """Encrypt a data key with the active master key (nonce + ciphertext + tag)."""
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + AESGCM(self._keys[self.active_kid]).encrypt(nonce, material, _wrap_aad(tenant_id, version))

    def unwrap(self, wrapped: bytes, *, kid: str, tenant_id: int, version: int) -> bytes:
        """The data key ``version`` of ``tenant_id``, wrapped by master key ``kid``."""
        key = self._keys.get(kid)
        if key is None:
            raise MasterKeyUnknown(
                f"data key {version} of tenant {tenant_id} is wrapped by master key {kid}, which is not configured"
                " (set it as ATENDE_MASTER_KEY or in ATENDE_PREVIOUS_MASTER_KEYS)",
                kid=kid,
                tenant_id=tenant_id,
            )
        wrapped = bytes(wrapped)
        try:
            if len(wrapped) != _WRAPPED_SIZE:
                raise InvalidTag
            return AESGCM(key).decrypt(wrapped[:_NONCE_SIZE], wrapped[_NONCE_SIZE:], _wrap_aad(tenant_id, version))
        except InvalidTag:
            raise SecretCorrupt(
                f"data key {version} of tenant {tenant_id} does not unwrap with master key {kid}"
                " (tampered, or copied from another tenant)",
                tenant_id=tenant_id,
                version=version,
            ) from None


# -- data keys and ciphertexts (pure) ---------------------------------------------------------------------------


class DataKey:
    """One unwrapped version of a tenant's data key. Keeps only the cipher object; its ``repr`` shows no key."""

    __slots__ = ("_aead", "tenant_id", "version")

    def __init__(self, tenant_id: int, version: int, material: bytes) -> None:
        if len(material) != _KEY_SIZE:
            raise ValueError(f"a data key is {_KEY_SIZE} bytes")
        if not 1 <= version <= 0xFFFFFFFF:
            raise ValueError("a data key version is 1..2**32-1")
        self.tenant_id = tenant_id
        self.version = version
        self._aead = AESGCM(material)

    @classmethod
    def generate(cls, tenant_id: int, version: int) -> tuple[DataKey, bytes]:
        """A new random key and its material (to be wrapped, then dropped)."""
        material = AESGCM.generate_key(bit_length=_KEY_SIZE * 8)
        return cls(tenant_id, version, material), material

    def __repr__(self) -> str:
        return f"DataKey(tenant_id={self.tenant_id}, version={self.version})"


def _secret_aad(tenant_id: int, header: bytes) -> bytes:
    return _SECRET_AAD + struct.pack(">q", tenant_id) + header


def _check_tenant(key: DataKey, tenant_id: int) -> None:
    # A programming error, not corruption: refuse to seal something no one could open (or to pretend to open).
    if key.tenant_id != tenant_id:
        raise ValueError(f"data key of tenant {key.tenant_id} used for tenant {tenant_id}")


def encrypt(plaintext: bytes, *, tenant_id: int, key: DataKey) -> bytes:
    """Seal ``plaintext`` for ``tenant_id`` with ``key`` (which must be that tenant's)."""
    _check_tenant(key, tenant_id)
    header = _HEADER.pack(FORMAT_MAGIC, key.version)
    nonce = os.urandom(_NONCE_SIZE)
    return header + nonce + key._aead.encrypt(nonce, bytes(plaintext), _secret_aad(tenant_id, header))


def is_sealed(blob: bytes) -> bool:
    """Whether ``blob`` looks like a sealed secret (format byte and minimum length); says nothing of its validity.

    Useful while migrating values stored before encryption: plaintext credentials are ASCII/JSON and never start
    with the format byte.
    """
    return len(blob) >= OVERHEAD and blob[0] == FORMAT_MAGIC


def key_version(blob: bytes) -> int:
    """The data key version that sealed ``blob`` (to find secrets still under an old version)."""
    if not is_sealed(blob):
        raise SecretCorrupt("value is not a sealed secret (unknown format or truncated)")
    _, version = _HEADER.unpack_from(blob)
    return int(version)


def _open(blob: bytes, tenant_id: int, keys: Mapping[int, DataKey]) -> bytes:
    blob = bytes(blob)
    version = key_version(blob)
    key = keys.get(version)
    if key is None:
        raise SecretCorrupt(
            f"secret names data key {version}, which tenant {tenant_id} does not have", tenant_id=tenant_id
        )
    header, nonce, body = blob[: _HEADER.size], blob[_HEADER.size : OVERHEAD - _TAG_SIZE], blob[OVERHEAD - _TAG_SIZE :]
    try:
        return key._aead.decrypt(nonce, body, _secret_aad(tenant_id, header))
    except InvalidTag:
        raise SecretCorrupt(
            f"secret of tenant {tenant_id} failed authentication (tampered, or copied from another tenant)",
            tenant_id=tenant_id,
        ) from None


def decrypt(blob: bytes, *, tenant_id: int, keys: DataKey | Iterable[DataKey]) -> bytes:
    """Open a secret sealed for ``tenant_id`` with whichever of ``keys`` (that tenant's versions) sealed it."""
    given = [keys] if isinstance(keys, DataKey) else list(keys)
    for key in given:
        _check_tenant(key, tenant_id)
    return _open(blob, tenant_id, {key.version: key for key in given})


class TenantCipher:
    """A tenant's data keys: encrypts with the newest version, decrypts with any. Get one with :func:`tenant_cipher`
    inside the transaction that reads or writes the secrets, and drop it with the transaction."""

    __slots__ = ("_keys", "active", "tenant_id")

    def __init__(self, tenant_id: int, keys: Iterable[DataKey]) -> None:
        self.tenant_id = tenant_id
        self._keys: dict[int, DataKey] = {}
        for key in keys:
            _check_tenant(key, tenant_id)
            self._keys[key.version] = key
        if not self._keys:
            raise ValueError("a tenant cipher needs at least one data key")
        self.active: DataKey = self._keys[max(self._keys)]

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._keys))

    def encrypt(self, plaintext: bytes) -> bytes:
        return encrypt(plaintext, tenant_id=self.tenant_id, key=self.active)

    def decrypt(self, blob: bytes) -> bytes:
        return _open(blob, self.tenant_id, self._keys)

    def __repr__(self) -> str:
        return f"TenantCipher(tenant_id={self.tenant_id}, versions={self.versions})"


# -- the unwrapped-key cache ------------------------------------------------------------------------------------


class _KeyCache:
    """Unwrapped data keys by (tenant, version), least recently used evicted first.

    An entry is used only if the row's wrapped bytes are the ones it was unwrapped from. So a re-wrap (master key
    rotation) simply costs one unwrap, and two databases in one process (tests, benchmarks) whose tenant ids
    coincide never see each other's keys. A lock keeps it safe for threaded callers (Ray actors may be threaded).
    """

    __slots__ = ("_entries", "_lock", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[int, int], tuple[bytes, DataKey]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant_id: int, version: int, wrapped: bytes) -> DataKey | None:
        with self._lock:
            entry = self._entries.get((tenant_id, version))
            if entry is None or entry[0] != wrapped:
                return None
            self._entries.move_to_end((tenant_id, version))
            return entry[1]

    def put(self, wrapped: bytes, key: DataKey) -> None:
        with self._lock:
            self._entries[(key.tenant_id, key.version)] = (wrapped, key)
            self._entries.move_to_end((key.tenant_id, key.version))
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_cache = _KeyCache(_CACHE_SIZE)


def clear_key_cache() -> None:
    """Forget every unwrapped data key held by this process (tests; or after dropping a master key)."""
    _cache.clear()


# -- data keys in the database ----------------------------------------------------------------------------------

_SELECT_KEYS = (
    "SELECT version, wrapped_key, master_kid FROM public.tenant_keys WHERE tenant_id = $1 ORDER BY version DESC"
)
_SELECT_NEWEST = _SELECT_KEYS + " LIMIT 1"
_INSERT_KEY = """
INSERT INTO public.tenant_keys (tenant_id, version, wrapped_key, master_kid) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING RETURNING version
"""


def _unwrap_row(row: asyncpg.Record, tenant_id: int, masters: MasterKeys) -> DataKey:
    version: int = row["version"]
    wrapped = bytes(row["wrapped_key"])
    # A cached key is used only with master keys that could unwrap it, so dropping a master key takes effect
    # at once, cache or not.
    key = _cache.get(tenant_id, version, wrapped) if row["master_kid"] in masters else None
    if key is None:
        material = masters.unwrap(wrapped, kid=row["master_kid"], tenant_id=tenant_id, version=version)
        key = DataKey(tenant_id, version, material)
        _cache.put(wrapped, key)
    return key


async def _insert_key(conn: Conn, tenant_id: int, version: int, masters: MasterKeys) -> DataKey | None:
    """Create data key ``version``; None if that version exists already (a concurrent caller won)."""
    key, material = DataKey.generate(tenant_id, version)
    wrapped = masters.wrap(material, tenant_id=tenant_id, version=version)
    del material
    try:
        inserted = await conn.fetchval(_INSERT_KEY, tenant_id, version, wrapped, masters.active_kid)
    except asyncpg.ForeignKeyViolationError as exc:
        raise TenantNotFound(f"tenant {tenant_id} does not exist", tenant=tenant_id) from exc
    if inserted is None:
        return None
    # Cached before the caller commits: harmless on rollback, as a cache hit needs these exact wrapped bytes.
    _cache.put(wrapped, key)
    return key


async def data_key(conn: Conn, tenant_id: int, masters: MasterKeys, *, create: bool = True) -> DataKey:
    """The newest data key of ``tenant_id``; with ``create`` (default) version 1 is made if the tenant has none.

    Creation is race-safe: concurrent callers all insert version 1 with ``ON CONFLICT DO NOTHING`` and the losers
    read the winner's key, so every caller gets the same key. Call it in the transaction that writes the secret,
    so that a rollback takes a new key and the ciphertexts sealed with it away together.
    """
    row = await conn.fetchrow(_SELECT_NEWEST, tenant_id)
    if row is None:
        if not create:
            raise DataKeyNotFound(f"tenant {tenant_id} has no data key", tenant_id=tenant_id)
        key = await _insert_key(conn, tenant_id, 1, masters)
        if key is not None:
            return key
        row = await conn.fetchrow(_SELECT_NEWEST, tenant_id)
        if row is None:  # only under REPEATABLE READ/SERIALIZABLE, which would have raised on the conflict
            raise RuntimeError(f"data key of tenant {tenant_id} vanished after a conflicting insert")
    return _unwrap_row(row, tenant_id, masters)


async def tenant_cipher(conn: Conn, tenant_id: int, masters: MasterKeys, *, create: bool = True) -> TenantCipher:
    """Every data key version of ``tenant_id`` as a :class:`TenantCipher` (creating version 1 like :func:`data_key`).

    One indexed query; unwrapping is cached per process, so the hot path costs no crypto beyond the secret itself.
    """
    rows = await conn.fetch(_SELECT_KEYS, tenant_id)
    if not rows:
        return TenantCipher(tenant_id, [await data_key(conn, tenant_id, masters, create=create)])
    return TenantCipher(tenant_id, [_unwrap_row(row, tenant_id, masters) for row in rows])


async def rotate_data_key(conn: Conn, tenant_id: int, masters: MasterKeys) -> DataKey:
    """Create the tenant's next data key version: new secrets use it, old versions still decrypt.

    Existing ciphertexts are not rewritten (re-seal them with a fresh :class:`TenantCipher` if the old key must
    go). Safe against a concurrent rotation: a version taken meanwhile is skipped, never overwritten.
    """
    for _ in range(_ROTATE_ATTEMPTS):
        newest = await conn.fetchval("SELECT max(version) FROM public.tenant_keys WHERE tenant_id = $1", tenant_id)
        key = await _insert_key(conn, tenant_id, (newest or 0) + 1, masters)
        if key is not None:
            return key
    raise Conflict(f"data key of tenant {tenant_id} is being rotated concurrently; retry", tenant_id=tenant_id)


# -- master key rotation ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class TenantRotation:
    tenant_id: int
    rewrapped: int = 0
    error: str | None = None


@dataclass(slots=True)
class RotationReport:
    active_kid: str
    tenants: list[TenantRotation]
    seconds: float
    #: Data keys still wrapped by another master key after the run, by kid: the previous master keys may be
    #: dropped only when this is empty.
    remaining: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[TenantRotation]:
        return [t for t in self.tenants if t.error is not None]

    @property
    def rewrapped(self) -> int:
        return sum(t.rewrapped for t in self.tenants)


async def _rewrap_tenant(tenant_id: int, masters: MasterKeys) -> TenantRotation:
    """Re-wrap one tenant's keys with the active master key in one transaction; errors are reported, not raised."""
    try:
        async with pool().acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT version, wrapped_key, master_kid FROM public.tenant_keys"
                " WHERE tenant_id = $1 AND master_kid <> $2 ORDER BY version FOR UPDATE",
                tenant_id,
                masters.active_kid,
            )
            for row in rows:
                version = row["version"]
                material = masters.unwrap(
                    row["wrapped_key"], kid=row["master_kid"], tenant_id=tenant_id, version=version
                )
                await conn.execute(
                    "UPDATE public.tenant_keys SET wrapped_key = $3, master_kid = $4, rotated_at = now()"
                    " WHERE tenant_id = $1 AND version = $2",
                    tenant_id,
                    version,
                    masters.wrap(material, tenant_id=tenant_id, version=version),
                    masters.active_kid,
                )
                del material
    except AtendeError as exc:
        logger.warning("re-wrapping the data keys of tenant %s failed: %s", tenant_id, exc.code)
        return TenantRotation(tenant_id, error=f"{exc.code}: {exc.detail}")
    except Exception as exc:  # one broken tenant must not stop the others
        logger.warning("re-wrapping the data keys of tenant %s failed", tenant_id, exc_info=True)
        return TenantRotation(tenant_id, error=f"{type(exc).__name__}: {exc}")
    return TenantRotation(tenant_id, rewrapped=len(rows))


async def rotate_master_keys(
    masters: MasterKeys,
    *,
    concurrency: int = 8,
    progress: Callable[[int, int, TenantRotation], None] | None = None,
) -> RotationReport:
    """Re-wrap every data key not wrapped by the active master key; the data keys (and so every ciphertext) stay.

    Resumable and idempotent: each tenant is re-wrapped in its own transaction and only keys under another kid are
    touched, so a crash leaves the finished tenants done and a second run re-wraps nothing. Run it after every
    process has the new active key (and the old one among its previous keys); when ``remaining`` is empty the
    previous master keys can be removed from the configuration.
    """
    started = time.perf_counter()
    rows = await pool().fetch(
        "SELECT DISTINCT tenant_id FROM public.tenant_keys WHERE master_kid <> $1 ORDER BY tenant_id",
        masters.active_kid,
    )
    tenant_ids = [r["tenant_id"] for r in rows]
    total = len(tenant_ids)
    results: list[TenantRotation] = []
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(tenant_id: int) -> None:
        async with gate:
            result = await _rewrap_tenant(tenant_id, masters)
        results.append(result)
        if progress is not None:
            progress(len(results), total, result)

    async with asyncio.TaskGroup() as group:
        for tenant_id in tenant_ids:
            group.create_task(one(tenant_id))
    results.sort(key=lambda r: r.tenant_id)
    left = await pool().fetch(
        "SELECT master_kid, count(*) AS keys FROM public.tenant_keys WHERE master_kid <> $1 GROUP BY master_kid",
        masters.active_kid,
    )
    remaining = {r["master_kid"]: r["keys"] for r in left}
    return RotationReport(masters.active_kid, results, time.perf_counter() - started, remaining)


async def keys_rotate_main(active: str, previous: Sequence[str], *, concurrency: int = 8, verbose: bool = False) -> int:
    """``atende keys rotate``: re-wrap every data key with ``active``, print progress and a summary, return the exit
    code (0 when every data key is now under the active master key). Expects the database pool to be open."""
    masters = MasterKeys.from_strings(active, previous)

    def progress(done: int, total: int, result: TenantRotation) -> None:
        if result.error is not None:
            print(f"[{done}/{total}] tenant {result.tenant_id}: FAILED {result.error}", flush=True)
        elif verbose:
            print(f"[{done}/{total}] tenant {result.tenant_id}: re-wrapped {result.rewrapped} data keys", flush=True)
        elif done % 100 == 0 or done == total:
            print(f"[{done}/{total}] tenants re-wrapped", flush=True)

    report = await rotate_master_keys(masters, concurrency=concurrency, progress=progress)
    print(
        f"re-wrapped {report.rewrapped} data keys of {len(report.tenants)} tenants with master key {report.active_kid}"
        f" in {report.seconds:.2f}s: {len(report.failed)} failed",
        flush=True,
    )
    if report.remaining:
        left = ", ".join(f"{count} under {kid}" for kid, count in sorted(report.remaining.items()))
        print(f"data keys still wrapped by other master keys: {left}; keep those keys configured", flush=True)
        return 1
    print(f"every data key is wrapped by {report.active_kid}; previous master keys may be removed", flush=True)
    return 1 if report.failed else 0
