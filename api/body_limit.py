"""A bound on request bodies, enforced before and while they stream in (413).

A declared ``Content-Length`` above the bound is refused before a byte of the body is read;
a body without one (chunked) is counted as it arrives and refused the moment it passes the
bound, so the API never holds more than the bound of any one body in memory. The login form
has a bound of its own (it is open to all and tiny).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem


class BodyTooLargeError(HTTPException):
    """The body passed the bound while it streamed in (mapped to 413 like any HTTP error)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {limit_bytes} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` (or the bound of their path) with 413."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        """``path_limits``: exact paths with a bound of their own."""
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the body as the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLargeError:
            # Raised where nothing turned it into a response (a view reading the stream
            # itself); FastAPI's body parsing re-raises HTTP errors to the handlers.
            if started:
                raise
            await _refuse(scope, receive, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem(
        413,
        f"the request body is larger than {limit} bytes",
        code="content-too-large",
        headers={"Connection": "close"},  # the rest of the body is not read
    )
    await response(scope, receive, send)
