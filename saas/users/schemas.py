"""Request and response shapes of the users API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

__all__ = ["AcceptInvite", "ChangePassword", "Invite", "InviteResult", "ProfileUpdate", "ResetPassword", "ResetToken",
           "UserOut", "UserPage", "UserUpdate"]  # fmt: skip

Role = Literal["admin", "supervisor", "agent"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Token = Annotated[str, msgspec.Meta(min_length=16, max_length=256)]


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    email: str
    name: str
    role: str
    active: bool
    invited: bool  # invited but not accepted yet
    capacity: int  # open tickets automatic distribution gives this user at most (0: none)
    presence: str  # online, away or offline (from the inbox)
    created_at: datetime


class UserPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[UserOut]
    next_cursor: str | None


class Invite(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    name: Name
    role: Role = "agent"


class InviteResult(msgspec.Struct, frozen=True, kw_only=True):
    user: UserOut
    invite_token: str  # shown once; send it to the invitee
    expires_at: datetime


class ResetToken(msgspec.Struct, frozen=True, kw_only=True):
    reset_token: str  # shown once
    expires_at: datetime


class AcceptInvite(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    token: Token
    password: Password
    name: Name | None = None


class ResetPassword(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    token: Token
    password: Password


class UserUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    capacity: Annotated[int, msgspec.Meta(ge=0, le=1000)] | msgspec.UnsetType = msgspec.UNSET


class ProfileUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET


class ChangePassword(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password
