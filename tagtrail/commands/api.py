"""API commands: ``tagtrail serve``."""

from __future__ import annotations

from typing import Annotated

import typer

from tagtrail.runtime import services
from tagtrail.settings import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the API's commands and benchmarks."""
    del bench  # no API benchmark yet
    app.command()(serve)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Serve the API and web console."""
    import uvicorn

    from api.app import create_app
    from api.config import ApiConfig
    from track_engine.db.migrate import migrate

    settings = Settings()
    with services(settings) as svc:
        migrate(svc.database_url)
        uvicorn.run(
            create_app(ApiConfig(database_url=svc.database_url)),
            host=host or settings.api_host,
            port=port or settings.api_port,
            log_level="info",
        )
