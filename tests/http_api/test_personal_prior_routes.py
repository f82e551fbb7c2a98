"""The personal way prior against a real database: the engine's job learns a rider's habit
from its stored passages, the API's route takes the habitual one of two equal ways — and,
once the bike is reported stolen, no longer does (nor does the thief's riding become habit).

A square block with a reader at every corner (each missing 30%): from S0 to S3 two equal
ways, past S1 or past S2. The rider has ridden past S1 four times; the rest of the fleet
past S2 six times. A ride heard only at S0 and S3 fits both ways equally.

        S2 ---- S3
        |        |
        S0 ---- S1
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from scenarios import LAT0, LON0, registration
from theft_scenes import bind_tags_since, register, report_theft, ride

from api.registry import loaders as registry
from track_engine.db import personal_priors, way_priors

CASE = "HZ-HABIT-18"
SIDE_M = 200.0
X = np.array([0.0, SIDE_M, 0.0, SIDE_M])
Y = np.array([0.0, 0.0, SIDE_M, SIDE_M])
LON = LON0 + X / (111_320.0 * np.cos(np.radians(LAT0)))
LAT = LAT0 + Y / 110_540.0


def _square_with_four_readers(url: str) -> None:
    nodes = pd.DataFrame(
        {"node_id": range(4), "lon": LON, "lat": LAT, "x_m": X, "y_m": Y, "kind": "junction"}
    )
    pairs = [(0, 1), (1, 3), (0, 2), (2, 3)]
    src = [a for a, _ in pairs] + [b for _, b in pairs]
    dst = [b for _, b in pairs] + [a for a, _ in pairs]
    edges = pd.DataFrame({
        "edge_id": range(len(src)), "src": src, "dst": dst, "length_m": SIDE_M,
        "road_class": "primary", "oneway": False,
    })  # fmt: skip
    readers = pd.DataFrame({
        "reader_id": [f"S{i}" for i in range(4)], "protocol": "r2000", "lon": LON, "lat": LAT,
        "x_m": X, "y_m": Y, "node_id": range(4), "antennas": 1,
        "antenna_headings": [[90.0]] * 4, "clock_offset_ms": 0.0, "miss_rate": 0.3,
    })  # fmt: skip
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn, name="habit square", source="test:habits", origin_lat=LAT0, origin_lon=LON0,
            nodes=nodes, edges=edges,
        )  # fmt: skip
        registry.upsert_readers(conn, readers, network_id=network_id)


def _engine_login(admin_url: str, url: str) -> Iterator[str]:
    """``url`` as a fresh LOGIN member of tagtrail_engine (dropped afterwards)."""
    role = f"tt_pp_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE tagtrail_engine").format(sql.Identifier(role))
        )
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["user"] = role
    try:
        yield psycopg.conninfo.make_conninfo(**info)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _learn(admin_url: str, url: str) -> personal_priors.PersonalPriorRun:
    """The engine's prior jobs (the fleet's, then every tag's own), as the engine's login."""
    for engine_url in _engine_login(admin_url, url):
        assert way_priors.run(engine_url, days=3) is not None
        result = personal_priors.run(engine_url, days=3)
    assert result is not None
    return result


def _corners_on(feature: dict) -> set[int]:
    """Which corners of the block the drawn route passes (by position)."""
    coords = np.asarray(feature["geometry"]["coordinates"], dtype=float)
    return {
        i for i in range(4)
        if np.any(np.hypot(coords[:, 0] - LON[i], coords[:, 1] - LAT[i]) < 1e-6)
    }  # fmt: skip


def test_the_route_takes_the_rider_s_way_until_the_bike_is_stolen(
    pg_admin_url: str, api_db: str, client: TestClient, headers: dict
) -> None:
    _square_with_four_readers(api_db)
    body = registration(7518)
    tag = body["tag_id"]
    bike_id = register(client, headers, body)
    now = datetime.now(UTC).replace(microsecond=0)
    bind_tags_since(api_db, bike_id, now - timedelta(days=2))
    seq = iter(range(1, 100))
    for k in range(4):  # the rider's habit: past S1, each morning
        day = now - timedelta(days=1, hours=12) + timedelta(hours=2 * k)
        ride(api_db, tag, day, ["S0", "S1", "S3"], gateway_id="gw-habit", batch_seq=next(seq))
    for k in range(6):  # the rest of the fleet: past S2
        other = f"E28011A2{k:016X}"
        day = now - timedelta(days=1, hours=11) + timedelta(hours=2 * k)
        ride(api_db, other, day, ["S0", "S2", "S3"], gateway_id="gw-habit", batch_seq=next(seq))

    run = _learn(pg_admin_url, api_db)
    assert run.tags_kept == 1  # only the registered rider (the others are no bike's tags)
    with psycopg.connect(api_db) as conn:
        prior, learned_at = personal_priors.load(conn, [tag])
    assert learned_at == run.learned_at
    assert prior.rides[("S0", "S3")] == pytest.approx({("S1",): 4.0}, rel=0.05)

    # This morning (two hours ago) the rider is heard only at S0 and S3: either way fits.
    today = now - timedelta(hours=2)
    ride(api_db, tag, today, ["S0", "S3"], gateway_id="gw-habit", batch_seq=next(seq))
    window = {
        "since": (today - timedelta(minutes=10)).isoformat(),
        "until": (today + timedelta(minutes=10)).isoformat(),
    }
    lookup = {**window, "reason": "habit check of the route model"}
    habitual = client.get(
        f"/api/v1/routes/{body['plate']}", params=lookup, headers=headers["officer"]
    )
    assert habitual.status_code == 200, habitual.text
    assert _corners_on(habitual.json()) == {0, 1, 3}  # the rider's own way, past S1
    (stretch,) = habitual.json()["properties"]["stretches"]
    assert stretch["probability"] > 0.6

    # Reported stolen before this ride: the thief does not ride the owner's ways.
    report_theft(client, headers, bike_id, today - timedelta(minutes=5), case_number=CASE)
    stolen = client.get(
        f"/api/v1/routes/{body['plate']}", params={**window, "case_number": CASE},
        headers=headers["officer"],
    )  # fmt: skip
    assert stolen.status_code == 200, stolen.text
    assert _corners_on(stolen.json()) == {0, 2, 3}  # the fleet's way, past S2

    # The thief rides past S2 three more times (within the next run's window); the run
    # learns none of it as the owner's habit (only rides before the theft feed its prior).
    for k in range(3):
        later = today + timedelta(minutes=20 + 10 * k)
        ride(api_db, tag, later, ["S0", "S2", "S3"], gateway_id="gw-habit", batch_seq=next(seq))
    _learn(pg_admin_url, api_db)
    with psycopg.connect(api_db) as conn:
        after, _ = personal_priors.load(conn, [tag])
    assert after.rides[("S0", "S3")] == pytest.approx({("S1",): 4.0}, rel=0.05)


def test_only_the_engine_writes_personal_priors(pg_admin_url: str, api_db: str) -> None:
    with psycopg.connect(api_db) as conn:
        conn.execute("SET ROLE tagtrail_api")
        conn.execute("SELECT count(*) FROM personal_way_priors").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO personal_way_priors (tag_id, ways, rides, learned_at) "
                "VALUES ('AB', '[]', 0, now())"
            )
