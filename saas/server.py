"""Run the API under uvicorn (used by ``atende serve`` and ``atende dev``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from saas.app import create_app
from saas.settings import Settings

__all__ = ["run", "serve"]


class _Server(uvicorn.Server):
    """uvicorn that shuts down gracefully on SIGINT/SIGTERM and then simply returns.

    (Stock uvicorn re-raises the signal after shutting down, which turns a clean Ctrl-C into a traceback.)
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._stop)
                installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _stop(self) -> None:
        self.should_exit = True


def run(settings: Settings) -> None:
    """Serve on uvloop (libuv: a faster event loop than the stdlib's for many small requests)."""
    import uvloop

    uvloop.run(serve(settings))


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
        http="httptools",  # the C parser (h11, the pure-Python default, costs ~3 ms a request)
    )
    server = _Server(config)
    await server.serve()
    if not server.started:
        raise SystemExit(1)
