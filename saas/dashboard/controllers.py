"""``/api/v1/dashboard``: service metrics over a period."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.dashboard.service import Dashboard, dashboard
from supervisor.wire import utcnow

__all__ = ["DashboardController"]

OptionalId = Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)]


class DashboardController(Controller):
    path = "/api/v1/dashboard"
    tags = ["dashboard"]

    @get("/", summary="Counts and average waiting, first-response and resolution times (wall clock and business "
         "hours) over a period, per agent, queue and connection", guards=[requires(Permission.DASHBOARD_READ)])  # fmt: skip
    async def index(
        self,
        caller: NamedDependency[Caller],
        period_from: Annotated[datetime | None, QueryParameter(name="from")] = None,
        period_to: Annotated[datetime | None, QueryParameter(name="to")] = None,
        queue_id: OptionalId = None,
        user_id: OptionalId = None,
        connection_id: OptionalId = None,
    ) -> Dashboard:
        async with principal_context(caller.claims) as (principal, session):
            return await dashboard(session, principal, period_from=period_from, period_to=period_to, now=utcnow(),
                                   queue_id=queue_id, user_id=user_id, connection_id=connection_id)  # fmt: skip
