"""Run the API under uvicorn (used by ``atende serve`` and ``atende dev``)."""

from __future__ import annotations

import uvicorn

from saas.app import create_app
from saas.settings import Settings

__all__ = ["serve"]


async def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; start-up failures (database, Redis) propagate."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our handler (saas.logs) formats everything
        access_log=False,  # RequestObserver writes one line per request
        lifespan="on",
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    await server.serve()
    if not server.started:
        raise SystemExit(1)
