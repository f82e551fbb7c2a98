"""The login's busy answer, given before the application is entered, and held back a while.

While every password-hash slot of the process is taken, a login cannot be checked now
whatever it says, so it is refused (429, Retry-After: 1) at the edge of the app: no form
parsing, no dependencies, no exception handling — a login flood then costs the event loop,
which also serves the officers' lookups, as little per request as an answer can. The login
view checks the slots again (a slot may fill between here and there).

Every refused login (busy, or over a failure limit) is answered only after ``delay_s``: a
client that retries at once — a flood — is paced to one attempt per ``delay_s`` on each
connection, at the cost of a sleeping coroutine. Without the pause, a hundred such clients
keep the event loop's queue a hundred requests deep, and each await of an officer's lookup
waits behind all of them (docs/performance.md, "Login flood").
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import PROBLEM_TYPE
from api.security import HashGate

BUSY_DETAIL = "the server is checking as many passwords as it can at once; try again in 1 s"
_BODY = orjson.dumps(
    {
        "type": PROBLEM_TYPE + "too-many-requests",
        "title": "Too many requests",
        "status": 429,
        "detail": BUSY_DETAIL,
    }
)
_HEADERS = [
    (b"content-type", b"application/problem+json"),
    (b"content-length", str(len(_BODY)).encode()),
    (b"retry-after", b"1"),
]


class LoginBusyMiddleware:
    """Answer ``POST path`` with 429 while ``gate`` has no free slot."""

    def __init__(self, app: ASGIApp, *, gate: HashGate, path: str, delay_s: float) -> None:
        """Guard the login at ``path`` with the process's hash slots ``gate``; hold each busy
        answer ``delay_s``."""
        self.app = app
        self.gate = gate
        self.path = path
        self.delay_s = delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse at once while the slots are full; otherwise pass the request on."""
        if (
            scope["type"] == "http"
            and scope["path"] == self.path
            and scope["method"] == "POST"
            and self.gate.full
        ):
            await asyncio.sleep(self.delay_s)
            await send({"type": "http.response.start", "status": 429, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": _BODY})
            return
        await self.app(scope, receive, send)
