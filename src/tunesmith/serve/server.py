"""Run the app with uvicorn (what `tunesmith serve` calls)."""

from __future__ import annotations

from tunesmith.serve.settings import ServeSettings


def run_server(settings: ServeSettings) -> None:
    """Serve ``create_app(settings)`` on ``settings.host:settings.port`` until interrupted."""
    import uvicorn

    from tunesmith.serve.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=10)
