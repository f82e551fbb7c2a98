"""The FastAPI application factory. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import xstatic.pkg.leaflet as xleaflet
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from api.bikes.views import router as bikes_router
from api.config import ApiConfig
from api.console.views import router as console_router
from api.errors import install_error_handlers
from api.network.service import NetworkCache
from api.network.views import router as network_router
from api.routes.views import router as routes_router


def create_app(config: ApiConfig) -> FastAPI:
    """Build the API and console for one database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(
            config.database_url, min_size=1, max_size=config.pool_max_size, open=False
        )
        pool.open(wait=True, timeout=30)
        app.state.pool = pool
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(title="TagTrail", version="0.1.0", lifespan=lifespan)
    app.state.config = config
    app.state.network = NetworkCache()
    install_error_handlers(app)
    for router in (bikes_router, routes_router, network_router, console_router):
        app.include_router(router)

    @app.get("/api/v1/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    app.mount("/static/leaflet", StaticFiles(directory=xleaflet.BASE_DIR), name="leaflet")
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("api").joinpath("static"))),
        name="static",
    )
    return app
