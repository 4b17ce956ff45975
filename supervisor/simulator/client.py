"""An async client for the simulator's control API (used by ``atende sim``, ``atende dev``, tests and benchmarks).

Every method is one HTTP call and returns the decoded schema from ``supervisor.simulator.network``; an error
answer raises :class:`SimulatorError` with the simulator's stable ``code``.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from supervisor.simulator.network import (
    Addressing,
    BulkJob,
    BulkRequest,
    GroupRequest,
    GroupView,
    InboxPage,
    MediaFailRequest,
    MediaItem,
    MediaSpec,
    NumberState,
    PairRequest,
    PhoneMessage,
    SentIds,
    SimConfig,
)
from supervisor.wire import MessageKind

__all__ = ["SimulatorClient", "SimulatorError"]

T = TypeVar("T")


class SimulatorError(Exception):
    """The simulator refused a control request (``code`` as in docs/simulator.md) or could not be reached."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.status = status


class SimulatorClient:
    """``async with SimulatorClient("http://127.0.0.1:8010") as sim: await sim.send(...)``."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        # trust_env=False: the simulator is local, never reach it through an environment proxy
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, trust_env=False)

    async def __aenter__(self) -> SimulatorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, into: type[T], body: Any = None, *, content: bytes | None = None,
                    headers: dict[str, str] | None = None, **params: Any) -> T:  # fmt: skip
        """One request: ``body`` goes as JSON, or ``content`` as it is (with its own ``headers``)."""
        if body is not None:
            content, headers = msgspec.json.encode(body), {"content-type": "application/json"}
        try:
            response = await self._http.request(method, path, content=content, headers=headers,
                                                params={k: v for k, v in params.items() if v is not None})  # fmt: skip
        except httpx.HTTPError as exc:
            raise SimulatorError("unreachable", f"simulator at {self._http.base_url} unreachable: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()
                code, message = str(error["code"]), str(error.get("message", ""))
            except (ValueError, KeyError, TypeError):
                code, message = f"http_{response.status_code}", response.text[:200]
            raise SimulatorError(code, message, status=response.status_code)
        return msgspec.json.decode(response.content, type=into)

    # -- phones -------------------------------------------------------------------------------------------------

    async def send(
        self,
        phone: str,
        to: str,
        text: str | None = None,
        *,
        kind: MessageKind = "text",
        name: str | None = None,
        media: MediaSpec | None = None,
        group: str | None = None,
        reply_to: str | None = None,
        from_me: bool = False,
        count: int = 1,
        addressing: Addressing = "pn",
    ) -> SentIds:
        """``phone`` sends ``count`` messages to business number ``to``; returns their ids (and media ids).

        ``media.data`` sends real bytes (their sha256 is what the business gets); ``addressing="lid"`` names the
        phone by its LID in the chat and as the sender.
        """
        message = PhoneMessage(to=to, text=text, kind=kind, name=name, media=media, group=group, reply_to=reply_to,
                               from_me=from_me, count=count, addressing=addressing)  # fmt: skip
        return await self._call("POST", f"/control/phones/{phone}/messages", SentIds, message)

    async def inbox(self, phone: str, *, after: int = 0, limit: int = 1000) -> InboxPage:
        """What ``phone`` received (``seq > after``), oldest first, with each message's ack state."""
        return await self._call("GET", f"/control/phones/{phone}/inbox", InboxPage, after=after, limit=limit)

    async def create_group(self, participants: list[str], *, subject: str | None = None,
                           group_id: str | None = None) -> GroupView:  # fmt: skip
        request = GroupRequest(participants=participants, subject=subject, id=group_id)
        return await self._call("POST", "/control/groups", GroupView, request)

    # -- numbers ------------------------------------------------------------------------------------------------

    async def pair(self, number: str, *, code: str | None = None) -> NumberState:
        """The phone scans the QR (or types ``code``) shown to the newest connection pairing ``number``."""
        return await self._call("POST", f"/control/numbers/{number}/pair", NumberState, PairRequest(code=code))

    async def fault(self, number: str, kind: str, *, seconds: float | None = None) -> NumberState:
        """Inject a fault (see ``FAULT_KINDS``); the simulator validates ``kind``."""
        request = {"kind": kind, "seconds": seconds} if seconds is not None else {"kind": kind}
        return await self._call("POST", f"/control/numbers/{number}/fault", NumberState, request)

    async def number(self, number: str) -> NumberState:
        return await self._call("GET", f"/control/numbers/{number}", NumberState)

    async def numbers(self) -> list[NumberState]:
        return await self._call("GET", "/control/numbers", list[NumberState])

    # -- load, media, config --------------------------------------------------------------------------------

    async def bulk(self, to: str, *, phones: int, messages: int, rate: float | None = None,
                   first_phone: str = "+5521700000000", addressing: Addressing = "pn") -> BulkJob:  # fmt: skip
        request = BulkRequest(to=to, phones=phones, messages=messages, rate=rate, first_phone=first_phone,
                              addressing=addressing)  # fmt: skip
        return await self._call("POST", "/control/bulk", BulkJob, request)

    async def bulk_job(self, job_id: str) -> BulkJob:
        return await self._call("GET", f"/control/bulk/{job_id}", BulkJob)

    async def upload_media(self, data: bytes, mime: str, filename: str | None = None) -> MediaItem:
        """Upload media as a business does (``POST /media``); a send whose ``media.ref`` is the item's id delivers it."""
        headers = {"content-type": mime}
        if filename:
            headers["x-filename"] = quote(filename, safe="")
        return await self._call("POST", "/media", MediaItem, content=data, headers=headers)

    async def fail_media(self, media_id: str, *, times: int = -1) -> MediaItem:
        """The next ``times`` downloads of ``media_id`` fail (-1: all, 0: none)."""
        return await self._call("POST", f"/control/media/{media_id}/fail", MediaItem, MediaFailRequest(times=times))

    async def config(self) -> SimConfig:
        return await self._call("GET", "/control/config", SimConfig)

    async def configure(self, **changes: Any) -> SimConfig:
        """Change some settings (``ack_read_s=0.1``, ``send_rate=5`` ...); returns the whole config."""
        return await self._call("PATCH", "/control/config", SimConfig, changes)

    async def reset(self) -> None:
        """Drop every connection and forget all state; the config goes back to the server's initial one."""
        await self._call("POST", "/control/reset", dict[str, str])

    async def health(self) -> bool:
        try:
            await self._call("GET", "/healthz", dict[str, str])
        except SimulatorError:
            return False
        return True
