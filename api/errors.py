"""Domain errors and their one mapping to HTTP."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from track_engine.errors import NotFoundError


class ApiError(Exception):
    """Base of errors the API's services raise; ``status`` is the HTTP status they map to."""

    status = 400


class BadRequestError(ApiError):
    """The request is well-formed but asks for something that cannot be done."""

    status = 400


class UnavailableError(ApiError):
    """A dependency the request needs is not ready (e.g. no road network loaded yet)."""

    status = 503


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors to JSON error responses with a clear message."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(NotFoundError)
    async def _not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)
