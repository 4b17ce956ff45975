"""``/api/v1/settings``: the tenant's service rules (hours, reopen rule, farewell, satisfaction survey)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.params import client_address
from saas.workspace.schemas import WorkspaceSettings, WorkspaceUpdate
from saas.workspace.service import load_settings, update_settings

__all__ = ["WorkspaceController"]


class WorkspaceController(Controller):
    path = "/api/v1/settings"
    tags = ["settings"]

    @get("/", summary="The tenant's service rules", guards=[requires(Permission.SETTINGS_MANAGE)])
    async def read(self, caller: NamedDependency[Caller]) -> WorkspaceSettings:
        async with principal_context(caller.claims) as (_principal, session):
            return await load_settings(session.conn)

    @patch("/", summary="Change the tenant's service rules (audited)", guards=[requires(Permission.SETTINGS_MANAGE)])
    async def update(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     data: JSONBody[WorkspaceUpdate]) -> WorkspaceSettings:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await update_settings(session, data, actor_id=principal.user_id,
                                         origin=client_address(request))  # fmt: skip
