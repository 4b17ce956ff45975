"""The one async protocol every WhatsApp driver implements.

A driver owns one WhatsApp connection (one business number). The session host creates it with a
:class:`DriverConfig`, calls :meth:`Driver.start`, and consumes :meth:`Driver.events` until the stream ends;
the *last* event before the end is a :class:`~supervisor.wire.SessionStatus` whose ``reason`` says why
(see ``supervisor.policy.DisconnectReason``). The host decides what to do next (restart, stop, quarantine):
drivers never reconnect by themselves unless the provider forces it (then they report RECONNECTING).

Delivery contract: an inbound event must not be acknowledged to the provider until the host has stored
it. Drivers therefore yield events, and the host calls :meth:`Driver.ack` with the very event once it has
appended it to a stream. Unacknowledged events are expected to be redelivered by the provider (duplicates
are fine: storage is idempotent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar, Protocol, runtime_checkable

import msgspec

from supervisor.wire import DriverEvent, MediaRef, MessageKind, SessionState

__all__ = ["Driver", "DriverConfig", "DriverError", "RateLimited", "SendFailed"]


class DriverConfig(msgspec.Struct, frozen=True, kw_only=True):
    connection_id: int
    tenant_id: int
    business_number: str  # E.164, e.g. "+5511900000000"
    provider: str
    endpoint: str | None = None  # base URL of the provider / simulator
    credentials: bytes | None = None  # stored session credentials (resume without a new QR)
    options: dict[str, str] = {}


class DriverError(Exception):
    """A driver operation failed; ``code`` is the provider's error code when it has one."""

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class RateLimited(DriverError):
    def __init__(self, message: str, *, retry_after_s: float, code: str | None = None) -> None:
        super().__init__(message, code=code, retryable=True)
        self.retry_after_s = retry_after_s


class SendFailed(DriverError):
    """The provider refused the message for good (bad number, outside the 24 h window ...)."""


@runtime_checkable
class Driver(Protocol):
    provider: ClassVar[str]

    async def start(self) -> None:
        """Connect (or resume from stored credentials). Pairing progress arrives as SessionStatus events."""

    async def stop(self) -> None:
        """Disconnect, keeping credentials; the event stream ends with a STOPPED SessionStatus."""

    async def logout(self) -> None:
        """Unpair this device; credentials become useless; the stream ends with LOGGED_OUT."""

    def status(self) -> SessionState:
        """The driver's current view of the connection."""

    def events(self) -> AsyncIterator[DriverEvent]:
        """Inbound messages, acks and session changes, in provider order per chat."""

    async def ack(self, event: DriverEvent) -> None:
        """Confirm to the provider that an inbound event is stored (see the module docstring)."""

    async def send_text(self, chat_id: str, text: str, *, idempotency_key: str, reply_to_id: str | None = None) -> str:
        """Send a text; returns the provider's message id. Raises RateLimited / SendFailed / DriverError."""

    async def send_media(self, chat_id: str, media: MediaRef, *, caption: str | None, idempotency_key: str,
                         data: bytes | None = None, kind: MessageKind | None = None) -> str:  # fmt: skip
        """Send a media item as ``kind`` (default: what its MIME type suggests); returns the provider message id.

        With ``data``, the driver uploads the bytes to the provider first (``media`` gives the mime and file name);
        without, ``media.ref`` must already be a URL or provider handle. A repeated ``idempotency_key`` sends
        nothing again (a repeated upload is harmless).
        """

    async def mark_read(self, chat_id: str, provider_message_ids: list[str]) -> None:
        """Send read receipts for inbound messages."""

    async def download_media(self, media: MediaRef) -> bytes:
        """Fetch a media item received earlier."""
