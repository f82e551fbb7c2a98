"""Live streams are pushed: NOTIFY tagtrail_live (migration 0035) → the API's one listener →
the SSE client, well before the (here very slow) safety poll; resume with Last-Event-ID; the
listener comes back after its backend is killed.

The API runs in a real uvicorn server on a thread: the TestClient would hold a streamed
response until it ends.
"""

from __future__ import annotations

import contextlib
import http.client
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
import psycopg
import pytest
import uvicorn
from api_helpers import KEYS, config
from fastapi import FastAPI
from testsupport import free_port

from api.app import create_app
from api.live.listener import Bell, LiveHub, Notice, parse_notice
from api.registry import loaders as registry

PUSH_S = 0.5  # an event must arrive this soon after its commit
SLOW_POLL_S = 60.0  # so slow that only a push can explain a prompt event


@dataclass(frozen=True)
class Bike:
    bike_id: int
    tag_id: str
    watch_id: int
    theft_id: int


@dataclass(frozen=True)
class Server:
    base: str
    port: int
    app: FastAPI

    @property
    def hub(self) -> LiveHub:
        hub: LiveHub = self.app.state.live_hub
        return hub


def _register(url: str, n: int) -> Bike:
    now = datetime.now(UTC)
    tag = f"E2000000000000000000{n:04d}"
    with psycopg.connect(url) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name=f"Owner {n}",
                    owner_phone="+10000000000",
                    owner_id_number=f"00000000000000{n:04d}",
                    brand="push",
                    colour="grey",
                    frame_number=f"PUSH{n:04d}",
                    plate=f"PUSH{n}",
                    tag_id=tag,
                )
            ],
            registered_at=now - timedelta(days=1),
            id_hash_key=KEYS["id_hash_key"],
        )
        bike_id = ids[f"PUSH{n}"]
        registry.open_theft(
            conn,
            bike_id=bike_id,
            stolen_at=now - timedelta(hours=1),
            reported_at=now - timedelta(minutes=50),
            place="test",
            description="test",
            case_number=f"HZ-PUSH-{n}",
        )
        row = conn.execute(
            "SELECT watch_id, theft_id FROM watches WHERE bike_id = %s AND closed_at IS NULL",
            (bike_id,),
        ).fetchone()
        assert row is not None
        conn.execute(
            "SELECT tagtrail_ensure_partitions('passages', now() - interval '1 day', "
            "now() + interval '1 day')"
        )
    return Bike(bike_id, tag, int(row[0]), int(row[1]))


@pytest.fixture(scope="module")
def bikes(api_db: str) -> tuple[Bike, Bike]:
    """Two stolen (watched) bikes."""
    return _register(api_db, 1), _register(api_db, 2)


@pytest.fixture(scope="module")
def server(api_db: str) -> Iterator[Server]:
    """The API in uvicorn, with safety polls so slow that only pushes arrive in time."""
    app = create_app(config(api_db, live_poll_s=SLOW_POLL_S, live_fallback_poll_s=SLOW_POLL_S))
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}", port, app)
    finally:
        srv.should_exit = True
        thread.join(15)


class Sse:
    """An SSE client on a thread: each event goes to a queue with its arrival time."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[tuple[float, str, str, dict[str, Any]]] = queue.Queue()
        self.status: int | None = None
        self.opened = threading.Event()
        self._closing = threading.Event()
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._conn.request("GET", path, headers={**headers, "Accept": "text/event-stream"})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"
        assert self.status == 200

    def _run(self) -> None:
        try:
            resp = self._conn.getresponse()
            self.status = resp.status
            if self._conn.sock is not None:
                self._conn.sock.settimeout(None)
            fields: dict[str, str] = {}
            while not self._closing.is_set():
                raw = resp.fp.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                if line.startswith("retry:"):
                    self.opened.set()
                elif line and ": " in line and not line.startswith(":"):
                    key, value = line.split(": ", 1)
                    fields[key] = value
                elif not line and "event" in fields:
                    self.events.put(
                        (
                            time.monotonic(),
                            fields["id"],
                            fields["event"],
                            orjson.loads(fields["data"]),
                        )
                    )
                    fields = {}
        except (OSError, http.client.HTTPException):
            pass
        finally:
            self.opened.set()

    def next(self, timeout: float) -> tuple[float, str, str, dict[str, Any]]:
        """The next event; fails the test if none comes within ``timeout``."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no event within {timeout} s")

    def quiet(self, seconds: float) -> bool:
        """True if no event arrives within ``seconds``."""
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self._closing.set()
        if self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._conn.close()


@contextlib.contextmanager
def sse(server: Server, path: str, headers: dict[str, str]) -> Iterator[Sse]:
    client = Sse(server.port, path, headers)
    try:
        yield client
    finally:
        client.close()


def _alert(url: str, bike: Bike, reader_id: str) -> tuple[int, float]:
    """Insert and commit one alert; returns its id and the time just before the insert."""
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (watch_id, tag_id, reader_id, read_at) "
            "VALUES (%s, %s, %s, now()) RETURNING alert_id",
            (bike.watch_id, bike.tag_id, reader_id),
        ).fetchone()
    assert row is not None
    return int(row[0]), started


def _passage(url: str, bike: Bike, reader_id: str) -> float:
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO passages (tag_id, reader_id, first_at, last_at, closest_at, "
            "peak_rssi_dbm, read_count) "
            "VALUES (%s, %s, now() - interval '1 s', now(), now(), -50, 5)",
            (bike.tag_id, reader_id),
        )
    return started


def _flag(url: str, bike: Bike) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO registration_flags (kind, stolen_bike_id, theft_id, presented_by) "
            "VALUES ('stolen_frame', %s, %s, 'the-registrar') RETURNING flag_id",
            (bike.bike_id, bike.theft_id),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- the payload and the bells (no database) ---


def test_notices_carry_ids_and_ring_only_the_streams_they_concern() -> None:
    assert parse_notice('{"t": "alert", "id": 7, "bike": 3}') == Notice("alert", 3)
    assert parse_notice('{"t": "passage"}') == Notice("passage")
    assert parse_notice("not json") is None
    assert parse_notice('{"t": "other"}') is None
    desk, bike3, bike4 = Bell(None), Bell(3), Bell(4)
    assert desk.concerns(Notice("alert", 3))
    assert desk.concerns(Notice("flag"))
    assert not desk.concerns(Notice("passage"))
    assert bike3.concerns(Notice("alert", 3))
    assert not bike4.concerns(Notice("alert", 3))
    assert bike4.concerns(Notice("passage"))
    assert not bike4.concerns(Notice("flag"))
    assert all(b.concerns(None) for b in (desk, bike3, bike4))  # unknown: everyone looks


# --- the migration ---


def test_migration_0035_reruns_cleanly_and_notifies_once_per_statement(db_url: str) -> None:
    sql = (
        resources.files("track_engine.db")
        .joinpath("migrations", "0035_alert_notify.sql")
        .read_text(encoding="utf-8")
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.encode())  # already applied by migrate(): a rerun changes nothing
        triggers = conn.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
            "WHERE tgname LIKE '%live_notify' ORDER BY 1"
        ).fetchall()
        assert triggers == [
            ("alerts", "alerts_live_notify"),
            ("passages", "passages_live_notify"),
            ("registration_flags", "registration_flags_live_notify"),
        ]
        bike = _register(db_url, 9)
        conn.execute("LISTEN tagtrail_live")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY passages (tag_id, reader_id, first_at, last_at, closest_at, peak_rssi_dbm, "
                "read_count) FROM STDIN"
            ) as copy,
        ):
            now = datetime.now(UTC)
            for i in range(1000):
                at = now - timedelta(seconds=i)
                copy.write_row((bike.tag_id, f"R{i}", at, at, at, -50.0, 3))
        alert_id, _ = _alert(db_url, bike, "R-alert")
        got = [n.payload for n in conn.notifies(timeout=1.0)]
    # One notice for the 1,000-row COPY; the alert names itself and its bike, nothing else.
    assert [orjson.loads(p) for p in got] == [
        {"t": "passage"},
        {"t": "alert", "id": alert_id, "bike": bike.bike_id},
    ]


# --- the streams ---


def test_alerts_reach_the_duty_desk_at_once(
    api_db: str, server: Server, headers: dict[str, dict[str, str]], bikes: tuple[Bike, Bike]
) -> None:
    assert server.hub.connected
    with sse(server, "/api/v1/live/alerts?max_seconds=60", headers["officer"]) as desk:
        delays = []
        for i in range(5):
            alert_id, started = _alert(api_db, bikes[i % 2], f"R-desk-{i}")
            arrived, _, kind, data = desk.next(timeout=5)
            assert (kind, data["alert_id"]) == ("alert", alert_id)
            delays.append(arrived - started)
        assert max(delays) < PUSH_S, delays
        flag_id = _flag(api_db, bikes[0])
        arrived, _, kind, data = desk.next(timeout=5)
        assert (kind, data["flag_id"]) == ("stolen_match", flag_id)


def test_a_bike_stream_gets_its_own_alerts_and_passages(
    api_db: str, server: Server, headers: dict[str, dict[str, str]], bikes: tuple[Bike, Bike]
) -> None:
    mine, other = bikes
    path = f"/api/v1/live/bikes/{mine.bike_id}?reason=push+test&max_seconds=60"
    with sse(server, path, headers["officer"]) as live:
        _alert(api_db, other, "R-other")
        _passage(api_db, other, "R-other")
        alert_id, started = _alert(api_db, mine, "R-mine")
        arrived, _, kind, data = live.next(timeout=5)
        assert (kind, data["alert_id"], data["bike_id"]) == ("alert", alert_id, mine.bike_id)
        assert arrived - started < PUSH_S
        started = _passage(api_db, mine, "R-mine")
        arrived, _, kind, data = live.next(timeout=5)
        assert (kind, data["tag_id"], data["reader_id"]) == ("passage", mine.tag_id, "R-mine")
        assert arrived - started < PUSH_S
        assert live.quiet(0.3)  # the other bike's alert and passage never came


def test_resume_with_last_event_id_misses_nothing_and_repeats_nothing(
    api_db: str, server: Server, headers: dict[str, dict[str, str]], bikes: tuple[Bike, Bike]
) -> None:
    officer = headers["officer"]

    def audited() -> int:
        with psycopg.connect(api_db) as conn:
            row = conn.execute(
                "SELECT count(*) FROM audit_log WHERE action = 'live.alerts'"
            ).fetchone()
        assert row is not None
        return int(row[0])

    before = audited()
    with sse(server, "/api/v1/live/alerts?max_seconds=60", officer) as desk:
        first, _ = _alert(api_db, bikes[0], "R-resume-0")
        _, last_id, _, data = desk.next(timeout=5)
        assert data["alert_id"] == first
    missed = [_alert(api_db, bikes[1], f"R-resume-{i}")[0] for i in (1, 2)]
    missed_flag = _flag(api_db, bikes[1])
    resumed_headers = {**officer, "Last-Event-ID": last_id}
    resume = "/api/v1/live/alerts?max_seconds=60&reason=resume+after+a+dropped+link"
    with sse(server, resume, resumed_headers) as desk:
        replay = [desk.next(timeout=5) for _ in range(3)]
        assert [(e[2], e[3].get("alert_id", e[3].get("flag_id"))) for e in replay] == [
            ("alert", missed[0]),
            ("alert", missed[1]),
            ("stolen_match", missed_flag),
        ]
        newest, started = _alert(api_db, bikes[0], "R-resume-3")
        arrived, _, _, data = desk.next(timeout=5)
        assert data["alert_id"] == newest
        assert arrived - started < PUSH_S
        assert desk.quiet(0.3)
    assert audited() == before + 2  # one audit row per stream opened, as before


def test_the_listener_reconnects_after_its_backend_is_killed(
    api_db: str,
    pg_admin_url: str,
    server: Server,
    headers: dict[str, dict[str, str]],
    bikes: tuple[Bike, Bike],
) -> None:
    hub = server.hub
    _wait_until(lambda: hub.connected, 10, "the listener")
    pid, connects = hub.backend_pid, hub.connects
    with sse(server, "/api/v1/live/alerts?max_seconds=60", headers["officer"]) as desk:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert killed == (True,)
        # Stored while no one may be listening: the reconnect itself makes every stream look.
        during, _ = _alert(api_db, bikes[0], "R-gap")
        _, _, _, data = desk.next(timeout=5)
        assert data["alert_id"] == during
        _wait_until(lambda: hub.connects > connects and hub.connected, 10, "the reconnect")
        assert hub.backend_pid not in (None, pid)
        after, started = _alert(api_db, bikes[1], "R-after")
        arrived, _, _, data = desk.next(timeout=5)
        assert data["alert_id"] == after
        assert arrived - started < PUSH_S
