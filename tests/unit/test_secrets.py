"""Secrets at rest, the pure part: sealing, tenant binding, tamper detection, the stored formats, master key ids."""

from __future__ import annotations

import base64
import pickle

import pytest

from tenants.errors import AtendeError
from tenants.secrets import (
    FORMAT_MAGIC,
    OVERHEAD,
    DataKey,
    MasterKeyInvalid,
    MasterKeys,
    MasterKeyUnknown,
    SecretCorrupt,
    TenantCipher,
    _KeyCache,
    decrypt,
    derive_master_key,
    encrypt,
    is_sealed,
    key_version,
    master_kid,
)

MASTER = "atende-test-master-key-0123456789abcdef"
OTHER_MASTER = "another-master-key-for-the-rotation-0123"
MATERIAL = bytes(range(32))


def key(tenant_id: int = 42, version: int = 1, material: bytes = MATERIAL) -> DataKey:
    return DataKey(tenant_id, version, material)


@pytest.mark.parametrize("plaintext", [b"", b"x", b'{"creds": "tag.body.mac"}', bytes(range(256)) * 400])
def test_round_trip_and_size(plaintext: bytes) -> None:
    k = key()
    blob = encrypt(plaintext, tenant_id=42, key=k)
    assert len(blob) == len(plaintext) + OVERHEAD
    assert decrypt(blob, tenant_id=42, keys=k) == plaintext
    assert decrypt(blob, tenant_id=42, keys=[k]) == plaintext


def test_sealing_twice_gives_different_ciphertexts() -> None:
    k = key()
    first, second = encrypt(b"same", tenant_id=42, key=k), encrypt(b"same", tenant_id=42, key=k)
    assert first != second  # random nonce: equal secrets do not show as equal ciphertexts
    assert decrypt(first, tenant_id=42, keys=k) == decrypt(second, tenant_id=42, keys=k) == b"same"


def test_a_ciphertext_copied_to_another_tenant_does_not_decrypt() -> None:
    blob = TenantCipher(1, [key(1)]).encrypt(b"tenant one's token")
    # Another tenant's own key: fails.
    with pytest.raises(SecretCorrupt) as caught:
        TenantCipher(2, [key(2, material=bytes(32))]).decrypt(blob)
    assert caught.value.code == "secret_corrupt"
    # Even the very same key material under another tenant id fails: the tenant is authenticated data.
    with pytest.raises(SecretCorrupt):
        TenantCipher(2, [key(2)]).decrypt(blob)


def test_keys_of_another_tenant_are_refused_as_a_programming_error() -> None:
    with pytest.raises(ValueError, match="tenant 2 used for tenant 1"):
        encrypt(b"x", tenant_id=1, key=key(2))
    blob = encrypt(b"x", tenant_id=1, key=key(1))
    with pytest.raises(ValueError, match="tenant 2 used for tenant 1"):
        decrypt(blob, tenant_id=1, keys=[key(2)])
    with pytest.raises(ValueError, match="tenant 2 used for tenant 1"):
        TenantCipher(1, [key(1), key(2, 2)])


def test_every_flipped_byte_is_detected() -> None:
    cipher = TenantCipher(42, [key(42, 1), key(42, 2, bytes(32))])
    blob = encrypt(b"credentials", tenant_id=42, key=cipher._keys[1])
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(SecretCorrupt):
            cipher.decrypt(bytes(tampered))
    # The header is authenticated: naming the other (existing) version fails too, not only a missing one.
    renamed = blob[:4] + b"\x02" + blob[5:]
    assert key_version(renamed) == 2
    with pytest.raises(SecretCorrupt, match="failed authentication"):
        cipher.decrypt(renamed)


@pytest.mark.parametrize("blob", [b"", b"\xa1", b"\xa1" + bytes(OVERHEAD - 2), b'{"creds": "plaintext from before"}'])
def test_truncated_or_foreign_values_are_corrupt(blob: bytes) -> None:
    assert not is_sealed(blob)
    with pytest.raises(SecretCorrupt, match="not a sealed secret"):
        decrypt(blob, tenant_id=42, keys=key())


def test_cut_or_extended_ciphertexts_are_corrupt() -> None:
    blob = encrypt(b"credentials", tenant_id=42, key=key())
    for bad in (blob[:-1], blob + b"\x00", blob[: OVERHEAD + 1]):
        with pytest.raises(SecretCorrupt):
            decrypt(bad, tenant_id=42, keys=key())


def test_a_version_the_tenant_lacks_is_corrupt() -> None:
    blob = encrypt(b"x", tenant_id=42, key=key(version=7))
    with pytest.raises(SecretCorrupt, match="names data key 7"):
        TenantCipher(42, [key(version=1)]).decrypt(blob)


def test_format_byte_and_version_header() -> None:
    blob = encrypt(b"x", tenant_id=42, key=key(version=258))
    assert blob[0] == FORMAT_MAGIC == 0xA1  # not ASCII: never the first byte of plaintext credentials or JSON
    assert blob[1:5] == (258).to_bytes(4, "big")
    assert is_sealed(blob) and key_version(blob) == 258


def test_stored_formats_are_frozen() -> None:
    """Values written by earlier releases must keep decrypting: derivation, kid, wrapping and sealing are fixed."""
    master = derive_master_key(MASTER)
    assert master.hex() == "150661735eb3f906658eb21a2ff2bb5618d775b9e1cb504188ee88de16b843e1"
    assert master_kid(master) == "d252af9450730387"
    wrapped = bytes.fromhex(
        "e03af041329be64ff3282ac01bfbe4089cdb9e97423bcaa4c49c73d03055926f"
        "08f05c14223621180351143a4c53158b4bb09055d5e5ad25ef00abfd"
    )
    masters = MasterKeys.from_strings(MASTER)
    assert masters.unwrap(wrapped, kid="d252af9450730387", tenant_id=42, version=3) == MATERIAL
    sealed = bytes.fromhex(
        "a100000003a4d297d83b151766af62402b2c201e4ef94bc3178565b1cf80870d0271d68b408e940de76624011ba6085c7372"
    )
    assert decrypt(sealed, tenant_id=42, keys=key(42, 3)) == b"hello credentials"


def test_tenant_cipher_seals_with_the_newest_version_and_opens_all() -> None:
    old, new = key(version=1), key(version=2, material=bytes(32))
    old_blob = encrypt(b"old", tenant_id=42, key=old)
    cipher = TenantCipher(42, [new, old])
    assert cipher.active is new and cipher.versions == (1, 2)
    assert key_version(cipher.encrypt(b"new")) == 2
    assert cipher.decrypt(old_blob) == b"old"
    with pytest.raises(ValueError, match="at least one"):
        TenantCipher(42, [])


def test_kid_is_a_stable_hash_prefix_of_the_derived_key() -> None:
    masters = MasterKeys.from_strings(MASTER, [OTHER_MASTER])
    assert masters.active_kid == master_kid(derive_master_key(MASTER))
    assert len(masters.active_kid) == 16 and int(masters.active_kid, 16) >= 0
    assert masters.kids == {master_kid(derive_master_key(MASTER)), master_kid(derive_master_key(OTHER_MASTER))}
    assert MasterKeys.from_strings(MASTER).active_kid == masters.active_kid  # same key, same kid, any process
    assert MasterKeys.from_strings(OTHER_MASTER).active_kid != masters.active_kid
    # A base64 string of 32 random bytes is just another string: it goes through HKDF like any other.
    b64 = base64.b64encode(bytes(range(100, 132))).decode()
    assert len(derive_master_key(b64)) == 32 and derive_master_key(b64) != base64.b64decode(b64)


@pytest.mark.parametrize("bad", ["", "short", "x" * 31])
def test_short_master_keys_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(MasterKeyInvalid) as caught:
        MasterKeys.from_strings(MASTER, [bad]) if bad else MasterKeys.from_strings(bad)
    assert caught.value.code == "master_key_invalid" and isinstance(caught.value, AtendeError)
    assert not bad or bad not in str(caught.value)


def test_previous_keys_must_be_a_sequence_not_one_string() -> None:
    with pytest.raises(TypeError):
        MasterKeys.from_strings(MASTER, OTHER_MASTER)


def test_wrapped_keys_are_bound_to_tenant_version_and_master() -> None:
    masters = MasterKeys.from_strings(MASTER)
    wrapped = masters.wrap(MATERIAL, tenant_id=42, version=1)
    assert masters.unwrap(wrapped, kid=masters.active_kid, tenant_id=42, version=1) == MATERIAL
    for tenant_id, version in ((43, 1), (42, 2)):
        with pytest.raises(SecretCorrupt):
            masters.unwrap(wrapped, kid=masters.active_kid, tenant_id=tenant_id, version=version)
    with pytest.raises(SecretCorrupt):
        masters.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), kid=masters.active_kid, tenant_id=42, version=1)
    rotated_only = MasterKeys.from_strings(OTHER_MASTER)
    with pytest.raises(MasterKeyUnknown) as caught:
        rotated_only.unwrap(wrapped, kid=masters.active_kid, tenant_id=42, version=1)
    assert caught.value.code == "master_key_unknown" and masters.active_kid in caught.value.detail


def test_no_repr_shows_key_material() -> None:
    masters = MasterKeys.from_strings(MASTER, [OTHER_MASTER])
    texts = [repr(masters), repr(key()), repr(TenantCipher(42, [key()]))]
    secrets = [MASTER, OTHER_MASTER, derive_master_key(MASTER).hex(), MATERIAL.hex(), repr(MATERIAL)]
    assert not [s for s in secrets for t in texts if s in t]
    assert "d252af9450730387" in repr(masters)


def test_master_keys_survive_pickling() -> None:
    masters = MasterKeys.from_strings(MASTER, [OTHER_MASTER])
    copy = pickle.loads(pickle.dumps(masters))  # noqa: S301 - our own object
    wrapped = masters.wrap(MATERIAL, tenant_id=1, version=1)
    assert copy.active_kid == masters.active_kid
    assert copy.unwrap(wrapped, kid=masters.active_kid, tenant_id=1, version=1) == MATERIAL


def test_key_cache_is_bounded_lru_and_checks_the_wrapped_bytes() -> None:
    cache = _KeyCache(maxsize=2)
    a, b, c = key(1), key(2), key(3)
    cache.put(b"wa", a)
    cache.put(b"wb", b)
    assert cache.get(1, 1, b"wa") is a  # touch a: b is now least recently used
    cache.put(b"wc", c)
    assert len(cache) == 2
    assert cache.get(2, 1, b"wb") is None
    assert cache.get(1, 1, b"wa") is a and cache.get(3, 1, b"wc") is c
    # Same tenant and version but other wrapped bytes (re-wrapped, or another database): a miss, never a wrong key.
    assert cache.get(1, 1, b"re-wrapped") is None
