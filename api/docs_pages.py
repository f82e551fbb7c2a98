"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, served with their scripts from the app.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so a station without internet saw a
blank page. The assets come from the ``fastapi-offline`` package (only its static files are
used) and are mounted under :data:`ASSETS_URL`; nothing on either page leaves the server.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/api-docs"


def install_docs_pages(app: FastAPI) -> None:
    """Mount the Swagger UI and ReDoc assets and serve both pages from them.

    ``app`` must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    Mount before the console's ``/static`` so this prefix wins.
    """
    assets = resources.files("fastapi_offline").joinpath("static")
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="api-docs")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=oauth2_redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            # Swagger UI's default validator badge is fetched from swagger.io: off.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
