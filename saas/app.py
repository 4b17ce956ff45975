"""The application factory: the one place that assembles the Litestar app, and the one place in ``saas`` that
imports ``ui`` (to mount its pages)."""

from __future__ import annotations

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from saas.auth.controllers import ApiTokenController, AuthController
from saas.auth.guards import provide_caller
from saas.connections.controllers import ConnectionController
from saas.contacts.controllers import ContactController
from saas.dashboard.controllers import DashboardController
from saas.errors import document_problems, exception_handlers
from saas.events import events_socket
from saas.health.controllers import HealthController
from saas.hooks.controllers import WebhookController
from saas.observability import RequestObserver, init_sentry
from saas.params import strict_json_body
from saas.platform.controllers import PlatformController
from saas.queues.controllers import QueueController
from saas.quick_replies.controllers import QuickReplyController, TicketQuickReplyController
from saas.runtime import Runtime
from saas.settings import Settings
from saas.tags.controllers import TagController
from saas.tickets.controllers import SearchController, TicketController
from saas.tickets.media import MediaController
from saas.users.controllers import AccountController, AuditController, ProfileController, UsersController
from saas.workspace.controllers import WorkspaceController
from saas.workspace.directory import DirectoryController
from ui.pages import template_config, ui_route_handlers

__all__ = ["create_app"]


def create_app(settings: Settings) -> Litestar:
    """Build the API for ``settings``; resources open on start-up and close on shutdown."""
    runtime = Runtime(settings)
    init_sentry(settings)

    app = Litestar(
        route_handlers=[
            HealthController,
            AuthController,
            AccountController,
            TicketController,
            UsersController,
            ProfileController,
            AuditController,
            PlatformController,
            ApiTokenController,
            QueueController,
            ContactController,
            TagController,
            QuickReplyController,
            TicketQuickReplyController,
            SearchController,
            MediaController,
            DashboardController,
            ConnectionController,
            WorkspaceController,
            DirectoryController,
            WebhookController,
            events_socket,
            *ui_route_handlers(),
        ],
        template_config=template_config(),
        dependencies={
            "runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False),
            "caller": Provide(provide_caller),
        },
        state=State({"runtime": runtime}),
        exception_handlers=exception_handlers(),
        before_request=strict_json_body,
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        openapi_config=OpenAPIConfig(
            title="Atende API",
            version="1",
            description="Multi-tenant customer service for WhatsApp. Errors are application/problem+json with a stable `code`.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None,
        logging_config=None,
        debug=False,
    )
    # Wrap the whole handler (not a route middleware) so 404s and early errors are observed too.
    document_problems(app)
    app.asgi_handler = RequestObserver(app.asgi_handler)
    return app
