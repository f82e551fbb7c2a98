"""Domain errors and their one mapping to HTTP, as RFC 9457 problem details.

ApiError
├── BadRequestError      400  well-formed, but cannot be done as asked
├── UnauthorizedError    401  no valid bearer token (or wrong password)
├── ForbiddenError       403  the caller's role may not do this
├── ConflictError        409  tag bound, plate taken, frame registered, username taken, ...
├── InvalidInputError    422  a value that says nothing (a reason of one letter), a closed case
├── TooManyRequestsError 429  login attempts exhausted for now, or every hash slot busy
└── UnavailableError     503  a dependency is not ready (e.g. no road network yet)

The engine's NotFoundError maps to 404. A location lookup that finds nothing raises
:class:`LookupNotFoundError` (a NotFoundError) carrying its audit entry: the request's own
transaction rolls back, so the handler appends that entry in a transaction of its own — who
looked for what is on record even when there was nothing to see. Every response body is
``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail`` (a sentence
meant for the person).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.registry import audit
from track_engine.errors import NotFoundError

log = logging.getLogger(__name__)
PROBLEM_TYPE = "https://tagtrail.example/problems/"


class ApiError(Exception):
    """Base of errors the API's services raise; ``status`` is the HTTP status they map to."""

    status = 400
    code = "bad-request"
    headers: dict[str, str] | None = None


class BadRequestError(ApiError):
    """The request is well-formed but asks for something that cannot be done."""


class UnauthorizedError(ApiError):
    """No valid credentials."""

    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - read-only class constant


class ForbiddenError(ApiError):
    """The caller is known but their role may not do this."""

    status = 403
    code = "forbidden"


class ConflictError(ApiError):
    """The request clashes with what is registered; ``code`` says which clash."""

    status = 409

    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class InvalidInputError(ApiError):
    """A value is well-formed but cannot stand (a reason that says nothing, a closed case)."""

    status = 422
    code = "invalid-request"


class LookupNotFoundError(NotFoundError):
    """A location lookup found nothing (no such plate, bike, case; never seen): 404, and
    ``record`` (who looked for what, why) is appended to the audit log all the same."""

    def __init__(self, message: str, *, record: audit.AuditRow) -> None:
        super().__init__(message)
        detail = {**record.detail, "outcome": "not found", "answer": message}
        # What was asked is recorded as asked, but PostgreSQL text holds no NUL: spelled out.
        self.record = dataclasses.replace(
            record,
            subject=_storable(record.subject),
            reason=_storable(record.reason),
            detail=_storable(detail),
        )


def _storable(value: Any) -> Any:
    """``value`` with NUL characters spelled ``\\x00`` (in strings, dicts and lists)."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


class TooManyRequestsError(ApiError):
    """Rate limit reached; retry after ``retry_after_s``."""

    status = 429
    code = "too-many-requests"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class UnavailableError(ApiError):
    """A dependency the request needs is not ready (e.g. no road network loaded yet)."""

    status = 503
    code = "unavailable"


_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": PROBLEM_TYPE + (code or _TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(
        jsonable_encoder(body),
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


def _validation_message(errors: list[dict[str, Any]]) -> str:
    # An unknown field comes first: it is usually the cause (a typo, an object nested one
    # level too deep) of the "Field required" that follows it.
    ordered = sorted(errors, key=lambda e: e.get("type") != "extra_forbidden")
    parts = []
    for err in ordered[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown field, not part of this request")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors (and framework and database refusals) to problem+json responses."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, str(exc), code=exc.code, headers=exc.headers)

    @app.exception_handler(NotFoundError)
    async def _not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return problem(404, str(exc), code="not-found")

    @app.exception_handler(LookupNotFoundError)
    async def _lookup_not_found(request: Request, exc: LookupNotFoundError) -> JSONResponse:
        try:
            async with request.app.state.lookup_pool.connection() as conn:
                await conn.execute(audit.INSERT, exc.record.values())
        except psycopg.Error:
            log.exception("a lookup that found nothing could not be audited")
            return problem(503, "the lookup could not be recorded in the audit log; try again")
        return problem(404, str(exc), code="not-found")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return problem(422, _validation_message(errors), code="invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None
        )

    # Safety nets: a value the database refuses (a NUL byte, a number out of range) is the
    # client's mistake, and a race lost to a unique or exclusion constraint is a conflict.
    @app.exception_handler(psycopg.errors.DataError)
    async def _data(_request: Request, exc: psycopg.errors.DataError) -> JSONResponse:
        return problem(400, f"a value was refused: {exc.diag.message_primary or exc}")

    @app.exception_handler(psycopg.errors.IntegrityError)
    async def _integrity(_request: Request, exc: psycopg.errors.IntegrityError) -> JSONResponse:
        log.info("integrity error mapped to 409: %s", exc)
        return problem(409, "this conflicts with something registered at the same moment")
