"""The media policy, keys and the SigV4 signer, exhaustively: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from supervisor.media import (
    ALLOWED_MIME,
    MAX_BYTES,
    MEDIA_KINDS,
    MediaError,
    MediaNotFound,
    MediaRejected,
    S3Store,
    check_key,
    check_media,
    kind_for_mime,
    media_key,
    sigv4_headers,
    sniff_mime,
    store_from_settings,
)

KiB = 1024
MiB = 1024 * KiB
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


# --- tiny but valid headers of every format ---------------------------------------------------------------------


def ftyp(brand: bytes) -> bytes:
    """An ISO BMFF file's first box: size, ``ftyp``, major brand, minor version, compatible brands."""
    body = brand + b"\x00\x00\x02\x00" + brand + b"isom"
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


def zip_of(*names: str, first_size: int = 16) -> bytes:
    """A real zip archive (stored entries); the first entry is ``first_size`` bytes long."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types>" + b" " * first_size + b"</Types>")
        for name in names:
            archive.writestr(name, b"<xml/>")
    return buffer.getvalue()


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
WEBP = b"RIFF" + (30).to_bytes(4, "little") + b"WEBPVP8 " + b"\x10\x00\x00\x00\x30\x01\x00\x9d\x01\x2a"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
GIF87 = b"GIF87a\x01\x00\x01\x00\x80\x00\x00"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
MP4 = ftyp(b"isom")
MP4_MP42 = ftyp(b"mp42")
GP3 = ftyp(b"3gp5")
GP3_4 = ftyp(b"3gp4")
M4A = ftyp(b"M4A ")
OGG = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead\x01\x01"
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00"
MP3_FB = b"\xff\xfb\x90\x64\x00\x00\x00\x00"
MP3_F3 = b"\xff\xf3\x48\xc4\x00\x00\x00\x00"
MP3_F2 = b"\xff\xf2\x48\xc4\x00\x00\x00\x00"
AAC_F1 = b"\xff\xf1\x50\x80\x02\x1f\xfc\x21"
AAC_F9 = b"\xff\xf9\x50\x80\x02\x1f\xfc\x21"
AMR = b"#!AMR\n\x3c\x48\xf5\x5f"
AMR_WB = b"#!AMR-WB\n\x04\x10\x20"
DOCX_ZIP = zip_of("_rels/.rels", "word/document.xml")
XLSX_ZIP = zip_of("_rels/.rels", "xl/workbook.xml")
PPTX_ZIP = zip_of("_rels/.rels", "ppt/presentation.xml")
PLAIN_ZIP = zip_of("notes/readme.txt")
DOCX_LATE_MARKER = zip_of("word/document.xml", first_size=3 * KiB)  # "word/" lies past the sniffed 2 KiB
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 24 + b"\x3e\x00\x03\x00\xfe\xff"
TEXT = "Olá, tudo bem? Segue o orçamento.\n".encode()
CSV = b"nome,valor\nCaf\xc3\xa9,12.50\n"
LATIN1_CSV = b"nome;valor\nCaf\xe9;12,50\n"  # a Windows-1252 export: not UTF-8, still text
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"This program cannot be run in DOS mode"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8

# A valid sample for every allowed MIME type.
SAMPLES: dict[str, bytes] = {
    "image/jpeg": JPEG,
    "image/png": PNG,
    "image/webp": WEBP,
    "video/mp4": MP4,
    "video/3gpp": GP3,
    "audio/aac": AAC_F1,
    "audio/mp4": M4A,
    "audio/mpeg": MP3_ID3,
    "audio/amr": AMR,
    "audio/ogg": OGG,
    "application/pdf": PDF,
    "text/plain": TEXT,
    "text/csv": CSV,
    "application/msword": OLE,
    DOCX: DOCX_ZIP,
    "application/vnd.ms-excel": OLE,
    XLSX: XLSX_ZIP,
    "application/vnd.ms-powerpoint": OLE,
    PPTX: PPTX_ZIP,
    "application/zip": PLAIN_ZIP,
}


# --- kind_for_mime ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/jpeg", "image"),
        ("image/png", "image"),
        ("image/webp", "image"),  # stickers are declared explicitly, never guessed
        ("IMAGE/JPEG", "image"),
        ("image/gif", None),
        ("image/heic", None),
        ("image/svg+xml", None),
        ("video/mp4", "video"),
        ("video/3gpp", "video"),
        ("video/quicktime", None),
        ("audio/aac", "audio"),
        ("audio/mp4", "audio"),
        ("audio/mpeg", "audio"),
        ("audio/amr", "audio"),
        ("audio/ogg", "audio"),
        ("audio/ogg; codecs=opus", "audio"),
        ("audio/wav", None),
        ("application/pdf", "document"),
        ("text/plain", "document"),
        ("text/plain; charset=utf-8", "document"),
        ("text/csv", "document"),
        ("application/msword", "document"),
        (DOCX, "document"),
        ("application/vnd.ms-excel", "document"),
        (XLSX, "document"),
        ("application/vnd.ms-powerpoint", "document"),
        (PPTX, "document"),
        ("application/zip", "document"),
        ("application/x-msdownload", None),
        ("application/octet-stream", None),
        ("text/html", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_kind_for_mime(mime: str, kind: str | None) -> None:
    assert kind_for_mime(mime) == kind


def test_every_allowed_mime_has_a_kind_and_a_sample() -> None:
    every = set().union(*ALLOWED_MIME.values())
    assert every == set(SAMPLES)
    for mime in every:
        assert kind_for_mime(mime) in MEDIA_KINDS


def test_policy_tables_cover_every_kind() -> None:
    assert set(ALLOWED_MIME) == set(MAX_BYTES) == set(MEDIA_KINDS)
    assert ALLOWED_MIME["voice"] == ALLOWED_MIME["audio"]
    assert ALLOWED_MIME["sticker"] == {"image/webp"}
    expected = {"image": 5 * MiB, "sticker": 500 * KiB, "video": 16 * MiB, "audio": 16 * MiB, "voice": 16 * MiB,
                "document": 100 * MiB}  # fmt: skip
    assert expected == MAX_BYTES


# --- sniff_mime -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (WEBP, "image/webp"),
        (GIF, "image/gif"),
        (GIF87, "image/gif"),
        (PDF, "application/pdf"),
        (MP4, "video/mp4"),
        (MP4_MP42, "video/mp4"),
        (GP3, "video/3gpp"),
        (GP3_4, "video/3gpp"),
        (M4A, "audio/mp4"),
        (OGG, "audio/ogg"),
        (MP3_ID3, "audio/mpeg"),
        (MP3_FB, "audio/mpeg"),
        (MP3_F3, "audio/mpeg"),
        (MP3_F2, "audio/mpeg"),
        (AAC_F1, "audio/aac"),
        (AAC_F9, "audio/aac"),
        (AMR, "audio/amr"),
        (AMR_WB, "audio/amr"),
        (DOCX_ZIP, DOCX),
        (XLSX_ZIP, XLSX),
        (PPTX_ZIP, PPTX),
        (PLAIN_ZIP, "application/zip"),
        (DOCX_LATE_MARKER, "application/zip"),
        (OLE, "application/msword"),
        (TEXT, "text/plain"),
        (CSV, "text/plain"),
        (b"x", "text/plain"),
        (LATIN1_CSV, None),
        (b"hello\x00world", None),
        (EXE, None),
        (ELF, None),
        (b"", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),  # RIFF but not WebP
        (b"\xff\xd8", None),  # too short to be a JPEG
        (b"\x00\x00\x00\x18ftyp", None),  # a box header without a brand
    ],
)
def test_sniff_mime(data: bytes, mime: str | None) -> None:
    assert sniff_mime(data) == mime


def test_sniffed_text_may_cut_a_character_at_the_window_but_not_at_the_end() -> None:
    cut = b"a" * 4095 + "é".encode() + b" and more text"  # the 2-byte "é" straddles the 4 KiB window
    assert sniff_mime(cut) == "text/plain"
    assert sniff_mime(b"a" * 10 + "é".encode()[:1]) is None  # a complete input ending mid-character
    assert sniff_mime(b"a" * 5000 + b"\x00") == "text/plain"  # only the first 4 KiB are looked at
    assert sniff_mime(b"a" * 4000 + b"\x00") is None


# --- check_media ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "mime"), sorted((kind, mime) for kind, mimes in ALLOWED_MIME.items() for mime in mimes)
)
def test_every_allowed_type_passes_with_real_content(kind: str, mime: str) -> None:
    assert check_media(kind, mime, SAMPLES[mime]) == mime
    assert check_media(kind, mime, size=len(SAMPLES[mime])) == mime
    assert check_media(kind, mime) == mime  # metadata only: type checked, size unknown


@pytest.mark.parametrize(
    ("kind", "mime", "data", "normalized"),
    [
        ("voice", "audio/ogg; codecs=opus", OGG, "audio/ogg"),
        ("voice", "Audio/OGG;codecs=opus", OGG, "audio/ogg"),
        ("image", "IMAGE/JPEG", JPEG, "image/jpeg"),
        ("image", " image/png ", PNG, "image/png"),
        ("document", "text/csv; charset=utf-8", CSV, "text/csv"),
        ("document", "text/plain", CSV, "text/plain"),
        ("document", "text/csv", TEXT, "text/csv"),
        ("document", "text/csv", LATIN1_CSV, "text/csv"),
        ("document", "text/csv", b"ID3,name\n1,Ana\n", "text/csv"),  # text that merely starts like a signature
        ("document", DOCX, DOCX_LATE_MARKER, DOCX),  # marker past the sniffed prefix: the zip family answers
        ("document", "application/zip", DOCX_ZIP, "application/zip"),
        ("document", XLSX, DOCX_ZIP, XLSX),  # one OOXML family
        ("document", "application/vnd.ms-excel", OLE, "application/vnd.ms-excel"),
        ("document", "application/vnd.ms-powerpoint", OLE, "application/vnd.ms-powerpoint"),
        ("audio", "audio/mp4", MP4_MP42, "audio/mp4"),  # m4a files often carry an mp4 brand
        ("video", "video/mp4", GP3, "video/mp4"),
        ("audio", "audio/mpeg", MP3_FB, "audio/mpeg"),
        ("sticker", "image/webp", WEBP, "image/webp"),
    ],
)
def test_accepted_content_and_normalized_mime(kind: str, mime: str, data: bytes, normalized: str) -> None:
    assert check_media(kind, mime, data) == normalized


def reject(kind: str, mime: str, data: bytes | None = None, **kwargs: int | None) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        check_media(kind, mime, data, **kwargs)
    assert isinstance(caught.value, MediaError)
    return caught.value


@pytest.mark.parametrize(
    ("kind", "mime"),
    [
        ("image", "image/gif"),
        ("image", "video/mp4"),
        ("image", "image/svg+xml"),
        ("sticker", "image/png"),
        ("sticker", "image/jpeg"),
        ("video", "video/quicktime"),
        ("video", "audio/mp4"),
        ("audio", "audio/wav"),
        ("voice", "audio/opus"),
        ("document", "application/x-msdownload"),
        ("document", "application/octet-stream"),
        ("document", "image/jpeg"),
        ("document", "text/html"),
        ("document", ""),
        ("gif", "image/gif"),
        ("location", "application/pdf"),
        ("", "image/jpeg"),
        ("Image", "image/jpeg"),
    ],
)
def test_type_not_allowed(kind: str, mime: str) -> None:
    rejected = reject(kind, mime, b"x")
    assert rejected.code == "media_type_not_allowed"
    assert rejected.limit is None


def test_type_is_checked_before_emptiness() -> None:
    assert reject("image", "application/x-msdownload", b"").code == "media_type_not_allowed"


@pytest.mark.parametrize("kind", MEDIA_KINDS)
def test_empty(kind: str) -> None:
    mime = sorted(ALLOWED_MIME[kind])[0]
    assert reject(kind, mime, b"").code == "media_empty"
    assert reject(kind, mime, size=0).code == "media_empty"


@pytest.mark.parametrize("kind", MEDIA_KINDS)
def test_size_limit_is_inclusive(kind: str) -> None:
    mime = sorted(ALLOWED_MIME[kind])[0]
    limit = MAX_BYTES[kind]
    assert check_media(kind, mime, size=limit) == mime
    rejected = reject(kind, mime, size=limit + 1)
    assert (rejected.code, rejected.limit) == ("media_too_large", limit)


def test_size_limit_with_real_bytes() -> None:
    at_limit = WEBP + b"\x00" * (500 * KiB - len(WEBP))
    assert check_media("sticker", "image/webp", at_limit) == "image/webp"
    rejected = reject("sticker", "image/webp", at_limit + b"\x00")
    assert (rejected.code, rejected.limit) == ("media_too_large", 500 * KiB)
    # The same bytes are a fine image: limits are per kind.
    assert check_media("image", "image/webp", at_limit + b"\x00") == "image/webp"


def test_per_call_cap_only_lowers_the_limit() -> None:
    assert check_media("image", "image/jpeg", size=1000, max_bytes=1000) == "image/jpeg"
    rejected = reject("image", "image/jpeg", size=1001, max_bytes=1000)
    assert (rejected.code, rejected.limit) == ("media_too_large", 1000)
    rejected = reject("image", "image/jpeg", size=5 * MiB + 1, max_bytes=50 * MiB)
    assert (rejected.code, rejected.limit) == ("media_too_large", 5 * MiB)
    rejected = reject("document", "application/pdf", PDF, max_bytes=len(PDF) - 1)
    assert (rejected.code, rejected.limit) == ("media_too_large", len(PDF) - 1)
    rejected = reject("document", "application/pdf", size=1, max_bytes=0)  # a plan without media
    assert (rejected.code, rejected.limit) == ("media_too_large", 0)


def test_size_is_checked_before_content() -> None:
    assert reject("image", "image/jpeg", EXE, max_bytes=10).code == "media_too_large"


@pytest.mark.parametrize(
    ("kind", "mime", "data"),
    [
        ("image", "image/jpeg", EXE),  # a renamed executable
        ("image", "image/jpeg", ELF),
        ("image", "image/jpeg", PNG),
        ("image", "image/png", GIF),  # a GIF renamed to .png is still not allowed
        ("image", "image/webp", b"RIFF\x00\x00\x00\x00WAVEfmt "),
        ("sticker", "image/webp", PNG),
        ("video", "video/mp4", JPEG),
        ("video", "video/3gpp", OGG),
        ("audio", "audio/aac", MP3_FB),
        ("audio", "audio/mpeg", AAC_F1),
        ("voice", "audio/ogg", AMR),
        ("audio", "audio/amr", TEXT),
        ("document", "application/pdf", TEXT),
        ("document", "application/pdf", DOCX_ZIP),
        ("document", DOCX, PDF),
        ("document", DOCX, OLE),  # legacy and OOXML are different families
        ("document", "application/msword", DOCX_ZIP),
        ("document", "application/zip", EXE),
        ("document", "text/plain", EXE),  # NUL bytes: binary, not text
        ("document", "text/csv", PNG),
        ("document", "text/plain", b"hello\x00world"),
    ],
)
def test_type_mismatch(kind: str, mime: str, data: bytes) -> None:
    rejected = reject(kind, mime, data)
    assert rejected.code == "media_type_mismatch"
    assert rejected.limit is None


def test_contradictory_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="does not match"):
        check_media("image", "image/jpeg", JPEG, size=len(JPEG) + 1)
    assert check_media("image", "image/jpeg", JPEG, size=len(JPEG)) == "image/jpeg"
    with pytest.raises(ValueError, match="negative size"):
        check_media("image", "image/jpeg", size=-1)
    with pytest.raises(ValueError, match="negative max_bytes"):
        check_media("image", "image/jpeg", size=1, max_bytes=-1)


def test_error_codes() -> None:
    assert MediaNotFound("t1/x").code == "media_not_found"
    assert MediaNotFound("t1/x").key == "t1/x"
    assert MediaError("down", code="media_store_unavailable").code == "media_store_unavailable"
    with pytest.raises(ValueError, match="unknown media rejection code"):
        MediaRejected("nope", code="media_not_found")


# --- keys -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "t1/2024/05/" + "0" * 64 + ".jpg",
        "A-b_c.d",
        "a/b/c/d/e",
        "...",
        ".hidden",
        "x..y",
        "a" * 512,
        "/".join(["ab"] * 171),
    ],
)
def test_good_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "/a",
        "a/",
        "a//b",
        ".",
        "..",
        "./a",
        "a/./b",
        "../a",
        "a/..",
        "a/../../etc/passwd",
        "t1/2024/../../t2/x.jpg",
        "..\\..\\windows",
        "a\\b",
        "a b",
        "a\tb",
        "a\nb",
        "a\x00b",
        "ü.jpg",
        "a/\u00e9",
        "%2e%2e/x",
        "a?b",
        "a#b",
        "C:/x",
        "~put-abc",
        "a" * 513,
        "/".join(["ab"] * 172),
    ],
)
def test_bad_keys(key: str) -> None:
    with pytest.raises(ValueError, match="media key"):
        check_key(key)


SHA = hashlib.sha256(b"photo").hexdigest()


@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("image/jpeg", "jpg"),
        ("image/png", "png"),
        ("image/webp", "webp"),
        ("video/mp4", "mp4"),
        ("video/3gpp", "3gp"),
        ("audio/aac", "aac"),
        ("audio/mp4", "m4a"),
        ("audio/mpeg", "mp3"),
        ("audio/amr", "amr"),
        ("audio/ogg", "ogg"),
        ("audio/ogg; codecs=opus", "ogg"),
        ("application/pdf", "pdf"),
        ("text/plain", "txt"),
        ("text/csv", "csv"),
        ("application/msword", "doc"),
        (DOCX, "docx"),
        ("application/vnd.ms-excel", "xls"),
        (XLSX, "xlsx"),
        ("application/vnd.ms-powerpoint", "ppt"),
        (PPTX, "pptx"),
        ("application/zip", "zip"),
        ("IMAGE/PNG", "png"),
        ("application/x-unknown", "bin"),
        ("", "bin"),
    ],
)
def test_media_key_extension(mime: str, ext: str) -> None:
    key = media_key(7, SHA, mime, now=datetime(2024, 5, 17, 12, 0, tzinfo=UTC))
    assert key == f"t7/2024/05/{SHA}.{ext}"
    assert check_key(key) == key


def test_media_key_is_content_addressed_per_tenant_and_utc_month() -> None:
    may = datetime(2024, 5, 31, 23, 59, tzinfo=UTC)
    assert media_key(1, SHA, "image/jpeg", now=may) == media_key(1, SHA, "image/jpeg", now=may - timedelta(days=30))
    assert media_key(1, SHA, "image/jpeg", now=may) != media_key(2, SHA, "image/jpeg", now=may)
    sao_paulo = timezone(timedelta(hours=-3))
    assert media_key(1, SHA, "image/jpeg", now=datetime(2024, 5, 31, 22, 0, tzinfo=sao_paulo)).startswith("t1/2024/06/")
    assert media_key(1, SHA.upper(), "image/jpeg", now=may) == f"t1/2024/05/{SHA}.jpg"


@pytest.mark.parametrize(
    ("tenant_id", "digest", "now", "match"),
    [
        (0, SHA, datetime(2024, 5, 1, tzinfo=UTC), "tenant id"),
        (-1, SHA, datetime(2024, 5, 1, tzinfo=UTC), "tenant id"),
        (True, SHA, datetime(2024, 5, 1, tzinfo=UTC), "tenant id"),
        (1, SHA[:-1], datetime(2024, 5, 1, tzinfo=UTC), "sha256"),
        (1, SHA + "0", datetime(2024, 5, 1, tzinfo=UTC), "sha256"),
        (1, "../" + SHA[3:], datetime(2024, 5, 1, tzinfo=UTC), "sha256"),
        (1, "g" * 64, datetime(2024, 5, 1, tzinfo=UTC), "sha256"),
        (1, SHA, datetime(2024, 5, 1), "timezone-aware"),
    ],
)
def test_media_key_rejects(tenant_id: int, digest: str, now: datetime, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        media_key(tenant_id, digest, "image/jpeg", now=now)


# --- SigV4 ------------------------------------------------------------------------------------------------------

# The "GET Object" example of AWS's "Signature Calculations for the Authorization Header" (S3 SigV4) docs.
EXAMPLE_URL = "https://examplebucket.s3.amazonaws.com/test.txt"
EXAMPLE_RANGE = {"Range": "bytes=0-9"}
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EXAMPLE_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_NOW = datetime(2013, 5, 24, 0, 0, 0, tzinfo=UTC)
EXAMPLE_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
)


def sign(
    method: str = "GET",
    url: str = EXAMPLE_URL,
    headers: dict[str, str] = EXAMPLE_RANGE,
    payload_sha256: str = EMPTY_SHA256,
    *,
    secret_key: str = EXAMPLE_SECRET_KEY,
    region: str = "us-east-1",
) -> dict[str, str]:
    return sigv4_headers(method, url, headers, payload_sha256, access_key=EXAMPLE_ACCESS_KEY, secret_key=secret_key,
                         region=region, now=EXAMPLE_NOW)  # fmt: skip


def signature(signed: dict[str, str]) -> str:
    return signed["authorization"].rpartition("Signature=")[2]


def test_sigv4_matches_the_published_get_object_example() -> None:
    assert sign() == {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
        "authorization": EXAMPLE_AUTHORIZATION,
    }


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (EXAMPLE_URL, {"RANGE": "bytes=0-9"}),  # header names are case-insensitive
        (EXAMPLE_URL, {"range": "  bytes=0-9 "}),  # values are trimmed
        ("https://examplebucket.s3.amazonaws.com:443/test.txt", EXAMPLE_RANGE),  # the default port is implied
        ("https://EXAMPLEBUCKET.s3.amazonaws.com/test.txt", EXAMPLE_RANGE),
        ("https://other.example/test.txt", {**EXAMPLE_RANGE, "Host": "examplebucket.s3.amazonaws.com"}),
    ],
)
def test_sigv4_canonical_forms_keep_the_published_signature(url: str, headers: dict[str, str]) -> None:
    assert sign(url=url, headers=headers)["authorization"] == EXAMPLE_AUTHORIZATION


def test_sigv4_signs_everything_that_matters() -> None:
    variants = [
        sign("HEAD"),
        sign(url="https://examplebucket.s3.amazonaws.com/test2.txt"),
        sign(url="http://examplebucket.s3.amazonaws.com:9000/test.txt"),
        sign(url=EXAMPLE_URL + "?versionId=1"),
        sign(headers={"Range": "bytes=0-10"}),
        sign(headers={**EXAMPLE_RANGE, "Content-Type": "image/jpeg"}),
        sign(payload_sha256=hashlib.sha256(b"x").hexdigest()),
        sign(secret_key="another secret"),
        sign(region="sa-east-1"),
    ]
    signatures = [signature(variant) for variant in variants]
    assert signature(sign()) not in signatures
    assert len(set(signatures)) == len(signatures)
    assert variants[2]["host"] == "examplebucket.s3.amazonaws.com:9000"
    assert "SignedHeaders=content-type;host;range;" in variants[5]["authorization"]
    assert "/sa-east-1/s3/aws4_request," in variants[8]["authorization"]


def test_sigv4_query_is_canonical() -> None:
    url = "https://examplebucket.s3.amazonaws.com/"
    assert sign(url=url + "?prefix=J&max-keys=2", headers={}) == sign(url=url + "?max-keys=2&prefix=J", headers={})
    assert sign(url=url + "?a=%2F%20b", headers={}) == sign(url=url + "?a=/%20b", headers={})
    assert signature(sign(url=url + "?a=1", headers={})) != signature(sign(url=url + "?a=2", headers={}))


def test_sigv4_needs_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sigv4_headers("GET", EXAMPLE_URL, {}, EMPTY_SHA256, access_key=EXAMPLE_ACCESS_KEY,
                      secret_key=EXAMPLE_SECRET_KEY, region="us-east-1", now=datetime(2013, 5, 24))  # fmt: skip


# --- configuration ----------------------------------------------------------------------------------------------


def test_store_from_settings_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="needs root"):
        store_from_settings("file", root=None, s3_endpoint=None, s3_bucket=None, s3_access_key=None,
                            s3_secret_key=None)  # fmt: skip
    with pytest.raises(ValueError, match="s3_endpoint, s3_bucket, s3_access_key, s3_secret_key"):
        store_from_settings("s3", root=None, s3_endpoint=None, s3_bucket=None, s3_access_key=None,
                            s3_secret_key=None)  # fmt: skip
    with pytest.raises(ValueError, match=r"needs s3_secret_key$"):
        store_from_settings("s3", root=None, s3_endpoint="http://127.0.0.1:9000", s3_bucket="media",
                            s3_access_key="k", s3_secret_key="")  # fmt: skip
    with pytest.raises(ValueError, match="unknown media store kind 'gcs'"):
        store_from_settings("gcs", root=Path("media"), s3_endpoint=None, s3_bucket=None, s3_access_key=None,
                            s3_secret_key=None)  # fmt: skip


@pytest.mark.parametrize(
    ("endpoint", "bucket", "match"),
    [
        ("ftp://127.0.0.1", "media", "endpoint"),
        ("127.0.0.1:9000", "media", "endpoint"),
        ("http://127.0.0.1:9000?x=1", "media", "endpoint"),
        ("http://127.0.0.1:9000", "Media", "bucket"),
        ("http://127.0.0.1:9000", "me", "bucket"),
        ("http://127.0.0.1:9000", "media/x", "bucket"),
        ("http://127.0.0.1:9000", "a..b", "bucket"),
        ("http://127.0.0.1:9000", "-media", "bucket"),
    ],
)
def test_s3_store_validates_its_configuration(endpoint: str, bucket: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        S3Store(endpoint=endpoint, bucket=bucket, access_key="k", secret_key="s")


def test_file_names_are_cleaned_for_storage_and_headers() -> None:
    from saas.tickets.media import clean_filename

    assert clean_filename("orçamento final.pdf") == "orçamento final.pdf"
    assert clean_filename("a\r\nSet-Cookie: x.pdf") == "aSet-Cookie: x.pdf"  # no header injection, no 500
    assert clean_filename("../../etc/passwd") == ".._.._etc_passwd"
    assert clean_filename("\x00\x07") is None and clean_filename(None) is None and clean_filename(42) is None
    assert len(clean_filename("x" * 500) or "") == 200
