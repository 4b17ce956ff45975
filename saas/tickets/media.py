"""Media in conversations: agents upload a file to send (``POST /api/v1/tickets/{id}/media``) and the inbox fetches
stored media (``GET /api/v1/tickets/{id}/messages/{message_id}/media``).

Uploads are checked before anything is stored (:func:`supervisor.media.check_media`: the kinds and sizes WhatsApp
accepts, and bytes that match the declared type), put in the media store under a content-addressed key, then sent
like a text reply. Served media carries its type only when it is one WhatsApp allows (anything else is a download
as ``application/octet-stream``), with ``nosniff`` and a sandboxing CSP, so a file can never run as a page of ours.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.contacts.service import can_see_history
from saas.effects import act
from saas.params import Id
from saas.runtime import Runtime
from saas.tickets import actions
from saas.tickets.schemas import MessageOut
from saas.tickets.service import TicketNotFound, get_ticket, visible_tickets
from supervisor.media import (
    ALLOWED_MIME,
    MEDIA_KINDS,
    MediaNotFound,
    MediaRejected,
    check_media,
    kind_for_mime,
    store_content,
)
from tenants.errors import AtendeError, InvalidInput, NotFound

__all__ = ["MediaController", "MediaUpload", "clean_filename"]

UPLOAD_LIMIT = 100 * 1024 * 1024 + 256 * 1024  # the largest file (documents) plus the form around it
_INLINE = frozenset(m for kind in ("image", "video", "audio", "voice", "sticker") for m in ALLOWED_MIME[kind])


def clean_filename(name: object) -> str | None:
    """A file name fit for storage and a ``Content-Disposition`` header: printable characters only (no CR/LF or
    other controls, which WhatsApp passes through), no path separators, at most 200 characters."""
    if not isinstance(name, str):
        return None
    cleaned = "".join(ch for ch in name if ch.isprintable()).replace("/", "_").replace("\\", "_")[:200]
    return cleaned or None


class MediaInvalid(AtendeError):
    status = 400
    title = "Media refused"

    def __init__(self, exc: MediaRejected) -> None:
        super().__init__(str(exc), field="file", limit=exc.limit)
        self.code = exc.code  # type: ignore[misc]  # media_type_not_allowed, media_type_mismatch, media_empty
        if exc.code == "media_too_large":
            self.status = 413  # type: ignore[misc]


class MediaNotStored(NotFound):
    code = "media_not_available"
    title = "Media not available"


@dataclass
class MediaUpload:
    """``file``: the file; ``kind``: image, video, audio, voice (a voice note), document or sticker (default: from
    the file's type); ``caption``: text sent with it; ``client_id``: makes a retry idempotent."""

    file: UploadFile
    kind: str | None = None
    caption: str | None = None
    client_id: str | None = None


class MediaController(Controller):
    path = "/api/v1/tickets/{ticket_id:int}"
    tags = ["tickets"]

    @post("/media", summary="Send a file (image, video, audio, voice note, document or sticker)", status_code=201,
          guards=[requires(Permission.TICKETS_REPLY)], request_max_body_size=UPLOAD_LIMIT)  # fmt: skip
    async def upload(
        self,
        caller: NamedDependency[Caller],
        runtime: NamedDependency[Runtime],
        ticket_id: Id,
        data: Annotated[MediaUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> MessageOut:
        upload = data.file
        content = await upload.read()
        declared = (upload.content_type or "application/octet-stream").lower()
        kind = data.kind or kind_for_mime(declared) or "document"
        if kind not in MEDIA_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(MEDIA_KINDS)}", field="kind")
        if data.caption is not None and (len(data.caption) > 1024 or "\x00" in data.caption):
            raise InvalidInput("a caption has at most 1024 characters, none of them NUL", field="caption")
        try:
            client_id = uuid.UUID(data.client_id) if data.client_id else None
        except ValueError as exc:
            raise InvalidInput("client_id must be a UUID", field="client_id") from exc
        try:
            mime = check_media(kind, declared, content, max_bytes=runtime.settings.media_max_mb * 1024 * 1024)
        except MediaRejected as exc:
            raise MediaInvalid(exc) from exc
        async with principal_context(caller.claims) as (principal, session):  # nothing stored for a ticket
            await get_ticket(session, ticket_id, principal)  # the caller cannot see (the reply checks again)
        # Content-addressed: an upload whose send fails costs nothing.
        key, digest = await store_content(runtime.media, caller.claims.tid, content, mime)
        filename = clean_filename(upload.filename)
        media = {"mime": mime, "size": len(content), "filename": filename, "sha256": digest, "key": key,
                 "state": "stored"}  # fmt: skip
        return await act(caller, runtime, lambda s, p: actions.reply(s, ticket_id, p, text=data.caption or None,
                                                                     client_id=client_id, kind=kind, media=media))  # fmt: skip

    @get("/messages/{message_id:int}/media", summary="A message's media file", guards=[requires(Permission.TICKETS_READ)],
         media_type="application/octet-stream")  # fmt: skip
    async def download(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                       message_id: Id) -> Response[bytes]:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            row = await session.conn.fetchrow(
                "SELECT m.media::text AS media, m.private, t.contact_id FROM messages m JOIN tickets t"
                " ON t.id = m.ticket_id WHERE m.id = $1 AND m.ticket_id = $2",
                message_id, ticket_id,
            )  # fmt: skip
            if row is None:
                await get_ticket(session, ticket_id, principal)  # 404 for the ticket if it is not to be seen
                raise MediaNotStored(f"message {message_id} has no stored media", message_id=message_id)
            if not await visible_tickets(session, [ticket_id], principal):
                # A contact's history shows the customer's messages (not notes) of tickets one cannot open.
                if row["private"]:
                    raise TicketNotFound(f"ticket {ticket_id} does not exist", ticket_id=ticket_id)
                await can_see_history(session, row["contact_id"], principal)
        media = msgspec.json.decode(row["media"]) if row["media"] else None
        if not media or media.get("state") != "stored" or not media.get("key"):
            raise MediaNotStored(f"message {message_id} has no stored media", message_id=message_id)
        try:
            content = await runtime.media.get(media["key"])
        except MediaNotFound as exc:
            raise MediaNotStored(f"the media of message {message_id} is gone", message_id=message_id) from exc
        mime = str(media.get("mime") or "application/octet-stream").lower()
        inline = mime in _INLINE
        filename = (clean_filename(media.get("filename")) or f"media-{message_id}").replace('"', "")
        disposition = "inline" if inline else f'attachment; filename="{filename.encode("ascii", "replace").decode()}"'
        return Response(content, media_type=mime if inline else "application/octet-stream", headers={
            "Content-Disposition": disposition, "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600"})  # fmt: skip
