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
from saas.params import OptionalId
from supervisor.wire import utcnow
from tenants.errors import InvalidInput

__all__ = ["DashboardController"]

ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$"
WHEN = "an ISO 8601 instant with its zone, e.g. 2026-12-01T00:00:00-03:00"


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{name} must be {WHEN}", field=name) from exc


class DashboardController(Controller):
    path = "/api/v1/dashboard"
    tags = ["dashboard"]

    @get("/", summary="Counts and average waiting, first-response and resolution times (wall clock and business "
         "hours) over a period, per agent, queue and connection", guards=[requires(Permission.DASHBOARD_READ)])  # fmt: skip
    async def index(
        self,
        caller: NamedDependency[Caller],
        period_from: Annotated[str | None, QueryParameter(name="from", pattern=ISO, description=WHEN)] = None,
        period_to: Annotated[str | None, QueryParameter(name="to", pattern=ISO, description=WHEN)] = None,
        queue_id: OptionalId = None,
        user_id: OptionalId = None,
        connection_id: OptionalId = None,
    ) -> Dashboard:
        async with principal_context(caller.claims) as (principal, session):
            return await dashboard(session, principal, period_from=_when(period_from, "from"),
                                   period_to=_when(period_to, "to"), now=utcnow(),
                                   queue_id=queue_id, user_id=user_id, connection_id=connection_id)  # fmt: skip
