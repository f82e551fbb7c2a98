"""An acknowledgement reaches every open duty desk at once: the API notifies on the live
channel after the acknowledgement's commit (no trigger: Citus cannot have one on ``alerts``),
and each desk's stream sends an ``ack`` event (who and when, no place) well before its (here
very slow) safety poll. A resumed desk gets the acknowledgements of its replay window; a
bike's stream never hears of them.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from test_live_push import PUSH_S, Bike, Server, _alert, _flag, bikes, server, sse

from api.live.listener import Bell, Notice, parse_notice

__all__ = ["bikes", "server"]  # fixtures of test_live_push, used here too


def _post(server: Server, path: str, headers: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    with httpx.Client(base_url=server.base, timeout=10) as http:
        return http.post(path, json={"note": "on it"}, headers=headers), started


def test_ack_notices_ring_the_desks_only() -> None:
    notice = parse_notice('{"t": "ack", "src": "alert", "id": 7}')
    assert notice == Notice("ack")
    assert Bell(None).concerns(notice)
    assert not Bell(3).concerns(notice)


def test_an_acknowledgement_reaches_the_other_desks_at_once(
    api_db: str,
    client: TestClient,
    server: Server,
    headers: dict[str, dict[str, str]],
    bikes: tuple[Bike, Bike],
) -> None:
    add_user(api_db, "second-officer", "officer")
    second = login(client, "second-officer")
    alert_id, _ = _alert(api_db, bikes[0], "R-ack")
    flag_id = _flag(api_db, bikes[1])
    with (
        sse(server, "/api/v1/live/alerts?max_seconds=60", headers["officer"]) as desk,
        sse(
            server,
            f"/api/v1/live/bikes/{bikes[0].bike_id}?case_number=HZ-PUSH-1&max_seconds=60",
            second,
        ) as bike,
    ):
        done, started = _post(server, f"/api/v1/alerts/{alert_id}/acknowledge", second)
        assert done.status_code == 200, done.text
        arrived, _, kind, data = desk.next(timeout=5)
        assert kind == "ack"
        assert arrived - started < PUSH_S  # the safety poll is a minute: this was pushed
        assert data["source"] == "alert"
        assert data["id"] == alert_id
        assert data["acknowledged_by"] == "second-officer"
        assert data["acknowledged_at"] == done.json()["acknowledged_at"].replace("Z", "+00:00")
        assert set(data) == {"source", "id", "acknowledged_by", "acknowledged_at"}  # no place

        done, started = _post(server, f"/api/v1/alerts/flags/{flag_id}/acknowledge", second)
        assert done.status_code == 200, done.text
        arrived, _, kind, data = desk.next(timeout=5)
        assert (kind, data["source"], data["id"]) == ("ack", "flag", flag_id)
        assert arrived - started < PUSH_S
        assert desk.quiet(0.3)  # each acknowledgement once
        assert bike.quiet(0.3)  # a bike's stream does not hear of acknowledgements

    # A desk resuming after a dropped link gets what was acknowledged meanwhile.
    resume = "/api/v1/live/alerts?max_seconds=60&reason=resume+after+a+dropped+link"
    replayed: list[tuple[str, Any]] = []
    with sse(server, resume, {**headers["officer"], "Last-Event-ID": "0.0"}) as desk:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, _, kind, data = desk.next(timeout=5)
            if kind == "ack":
                replayed.append((data["source"], data["id"]))
            if len(replayed) == 2:
                break
    assert replayed == [("alert", alert_id), ("flag", flag_id)]

    with psycopg.connect(api_db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%ack%' AND NOT tgisinternal"
        ).fetchone()
    assert row == (0,)  # pushed by the API after its commit, not by a trigger
