"""Real peers for the notice tests: an SMTP server (aiosmtpd) and an HTTP receiver on
loopback, each started and stopped at will (a receiver "down" has its port closed); and a
small world of accounts, a bike, its watches and its theft, built through the API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import Envelope, Session
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from scenarios import registration
from testsupport import free_port


class SmtpSink:
    """An SMTP server on 127.0.0.1:``port`` keeping every message it accepts."""

    def __init__(self, port: int, **controller_options: Any) -> None:
        self.port = port
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []
        self._options = controller_options  # aiosmtpd's: tls_context, authenticator, ...
        self._controller: Controller | None = None

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:
        """Keep the message (aiosmtpd's handler hook)."""
        del server, session
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        """Listen (again)."""
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **self._options)
        self._controller.start()

    def stop(self) -> None:
        """Close the port."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1:``port`` answering POSTs with ``status``."""

    port: int
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen (again)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """The URL webhooks are sent to."""
        return f"http://127.0.0.1:{self.port}/hooks/tagtrail"


def receiver() -> Receiver:
    """A receiver on a free port, not yet listening."""
    return Receiver(free_port())


@dataclass(frozen=True)
class World:
    """A resident's registered bike with an armed watch; a duty desk officer and an admin."""

    resident: dict[str, str]
    registrar: dict[str, str]
    officer: dict[str, str]
    admin: dict[str, str]
    bike_id: int
    armed_watch_id: int
    tag_id: str
    frame_number: str


def build_world(client: TestClient, url: str, n: int) -> World:
    """Accounts, a booking, a registration and an armed watch, all through the API."""
    for role in ("admin", "officer", "registrar"):
        add_user(url, f"n{n}-{role}", role)
    add_user(url, f"n{n}-resident", "resident")
    admin, officer = login(client, f"n{n}-admin"), login(client, f"n{n}-officer")
    registrar, resident = login(client, f"n{n}-registrar"), login(client, f"n{n}-resident")
    event = client.post(
        "/api/v1/events",
        json={"name": "E", "place": "P", "starts_at": "2031-01-01T00:00:00Z",
              "ends_at": "2031-01-01T08:00:00Z", "capacity": 10},
        headers=admin,
    ).json()  # fmt: skip
    booking = client.post(f"/api/v1/events/{event['event_id']}/bookings", headers=resident)
    assert booking.status_code == 201, booking.text
    body = registration(n, booking_id=booking.json()["booking_id"])
    bike = client.post("/api/v1/bikes", json=body, headers=registrar)
    assert bike.status_code == 201, bike.text
    bike_id = bike.json()["bike_id"]
    ends_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    watch = client.post(
        f"/api/v1/bikes/{bike_id}/watches", json={"ends_at": ends_at}, headers=resident
    )
    assert watch.status_code == 201, watch.text
    watch_id = watch.json()["watch_id"]
    return World(
        resident, registrar, officer, admin, bike_id, watch_id, body["tag_id"], body["frame_number"]
    )


def report_theft(client: TestClient, url: str, world: World) -> int:
    """The resident reports the bike stolen; returns the theft's watch id."""
    stolen_at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    theft = client.post(
        "/api/v1/thefts", json={"bike_id": world.bike_id, "stolen_at": stolen_at},
        headers=world.resident,
    )  # fmt: skip
    assert theft.status_code == 201, theft.text
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT watch_id FROM watches WHERE theft_id = %s", (theft.json()["theft_id"],)
        ).fetchone()
    assert row is not None
    return int(row[0])


def engine_alert(url: str, watch_id: int, tag_id: str, reader_id: str) -> int:
    """Store an alert as the engine does: its statement, under its database role."""
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE tagtrail_engine")
        row = conn.execute(
            """INSERT INTO alerts (watch_id, tag_id, reader_id, read_at)
               VALUES (%s, %s, %s, now()) RETURNING alert_id""",
            (watch_id, tag_id, reader_id),
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout_s``."""
    stop = threading.Event()
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    while not condition():
        if datetime.now(UTC) > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        stop.wait(0.05)


def notices(url: str, where: str = "TRUE", *args: Any) -> list[dict[str, Any]]:
    """Outbox rows as dicts."""
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            f"SELECT * FROM notices WHERE {where} ORDER BY notice_id", args
        ).fetchall()


def attempts(url: str, notice_id: int) -> list[tuple[int, str, str]]:
    """(attempt, outcome, error) of a notice."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT attempt, outcome, error FROM notice_attempts WHERE notice_id = %s "
            "ORDER BY attempt",
            (notice_id,),
        ).fetchall()
    return [(int(a), str(o), str(e)) for a, o, e in rows]
