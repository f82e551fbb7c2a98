"""Learned reader miss rates (migration 0045, track_engine.db.reader_miss_rates) end to end.

A small simulated city whose busiest reader is deaf (it misses 90% of the tags passing it)
while the registry says 30%: the job, run as the engine's database login, learns it from the
stored passages; the readers API flags it deaf; an import keeps what was learned; the API's
loaded network (what routes are drawn with) picks the learned rate up.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psycopg
import pytest
from api_helpers import add_user, create_migrated_database, login
from fastapi.testclient import TestClient
from psycopg import sql
from scenarios import SPACING_M, line_city
from testsupport import drop_database
from typer.testing import CliRunner

from api.network.service import NetworkCache
from api.registry import loaders as registry
from simulators.city import generate_city
from simulators.readers import place_readers
from simulators.rf import simulate_reads
from simulators.riders import generate_population, trajectories
from tagtrail.bench.engine_replay import estimate_passages
from tagtrail.cli import app
from track_engine.db import reader_miss_rates
from track_engine.db.miss_rate_schedule import JobOptions, learn_periodically, run_in_process
from track_engine.db.reader_miss_rates import LearnRun
from track_engine.db.writer import PartitionKeeper, store_passages

# The morning peak (07:00 local): a busy city. The job is told it is three hours later.
START = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
NOW = START + timedelta(hours=3)
SEED = 5
DEAF = "R0003"  # the busiest reader of this city (asserted below)
REGISTRY = 0.3


@dataclasses.dataclass(frozen=True)
class City:
    """The stored city and what the job learned from it."""

    url: str
    run: LearnRun
    true_miss: dict[str, float]


def _engine_login(admin_url: str, url: str) -> Iterator[str]:
    """``url`` as a fresh LOGIN member of tagtrail_engine (dropped afterwards)."""
    role = f"tt_engine_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE tagtrail_engine").format(sql.Identifier(role))
        )
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["user"] = role
    try:
        yield psycopg.conninfo.make_conninfo(**info)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:  # its sessions end first
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def city(pg_admin_url: str, api_db: str) -> Iterator[City]:
    roads = generate_city(seed=SEED, size_m=1500.0)
    population = generate_population(roads, seed=SEED, bikes=600, start=START, hours=2.0, thefts=0)
    traj = trajectories(roads, population, seed=SEED)
    readers = place_readers(roads, seed=SEED, fraction=0.25, miss_rate=REGISTRY)
    readers = [dataclasses.replace(r, miss_rate=0.9) if r.reader_id == DEAF else r for r in readers]
    reads, truth = simulate_reads(roads, readers, traj, seed=SEED)
    assert truth["reader_id"].value_counts().index[0] == DEAF  # the busiest: plenty of evidence
    passages = estimate_passages(reads, readers)
    with psycopg.connect(api_db) as conn:
        network_id = registry.store_road_network(
            conn, name="deaf city", source="test:deaf", origin_lat=roads.origin_lat,
            origin_lon=roads.origin_lon,
            nodes=pd.DataFrame({
                "node_id": range(len(roads.node_xy_m)), "lon": roads.node_lonlat[:, 0],
                "lat": roads.node_lonlat[:, 1], "x_m": roads.node_xy_m[:, 0],
                "y_m": roads.node_xy_m[:, 1], "kind": roads.node_kind,
            }),
            edges=pd.DataFrame({
                "edge_id": range(len(roads.edge_src)), "src": roads.edge_src,
                "dst": roads.edge_dst, "length_m": roads.edge_length_m,
                "road_class": roads.edge_class, "oneway": roads.edge_oneway,
            }),
        )  # fmt: skip
        registry.upsert_readers(
            conn,
            pd.DataFrame(
                {
                    "reader_id": [r.reader_id for r in readers],
                    "protocol": [r.protocol for r in readers],
                    "lon": [r.lon for r in readers],
                    "lat": [r.lat for r in readers],
                    "x_m": [r.x_m for r in readers],
                    "y_m": [r.y_m for r in readers],
                    "node_id": [r.node for r in readers],
                    "antennas": [r.antennas for r in readers],
                    "antenna_headings": [list(r.antenna_heading_deg) for r in readers],
                    "clock_offset_ms": [r.clock_offset_s * 1000 for r in readers],
                    "miss_rate": REGISTRY,  # what the survey said of every reader
                }
            ),
            network_id=network_id,
        )
        store_passages(conn, passages, partitions=PartitionKeeper())
    for engine_url in _engine_login(pg_admin_url, api_db):
        run = reader_miss_rates.run(engine_url, now=NOW)
        assert run is not None
        yield City(api_db, run, {r.reader_id: r.miss_rate for r in readers})


@pytest.fixture(scope="module")
def tokens(api_db: str, client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers of an admin and an officer (only the roles these tests need)."""
    for role in ("admin", "officer"):
        add_user(api_db, f"mr-{role}", role)
    return {role: login(client, f"mr-{role}") for role in ("admin", "officer")}


def _stored(url: str, reader_id: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT miss_rate, miss_rate_learned, miss_rate_passes, miss_rate_learned_at "
            "FROM readers WHERE reader_id = %s",
            (reader_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_the_migration_adds_the_learned_columns(api_db: str) -> None:
    with psycopg.connect(api_db) as conn:
        cols = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'readers' AND column_name LIKE 'miss_rate%%'"
            ).fetchall()
        )
        assert cols == {
            "miss_rate": "real",
            "miss_rate_learned": "real",
            "miss_rate_passes": "real",
            "miss_rate_learned_at": "timestamp with time zone",
        }
        with pytest.raises(psycopg.errors.CheckViolation):  # a rate is a probability
            conn.execute(
                "INSERT INTO readers (reader_id, protocol, lon, lat, x_m, y_m, miss_rate_learned)"
                " VALUES ('X', 'r2000', 0, 0, 0, 0, 1.5)"
            )


def test_the_job_learns_the_deaf_reader(city: City) -> None:
    learned = {r.reader_id: r for r in city.run.readers}
    deaf = learned[DEAF]
    # Measured: 0.883 over 126 passes (14 heard, 112 expected silent; the simulator's truth
    # is 0.9). The assertion leaves room for the learner's prior to change.
    assert deaf.miss_rate_learned is not None
    assert deaf.miss_rate_learned > 0.75
    assert deaf.passes is not None
    assert deaf.passes >= 60
    assert deaf.registry_miss_rate == pytest.approx(REGISTRY)
    assert deaf.deaf
    assert deaf.unexpectedly_deaf
    assert [r.reader_id for r in city.run.deaf] == [DEAF]
    # The others hear as the simulator made them (0.25-0.35): none far off.
    others = [r.miss_rate_learned for r in city.run.readers if r.reader_id != DEAF and r.passes]
    assert len(others) >= 10
    assert float(np.median([o for o in others if o is not None])) < 0.45
    # Stored in one go: the learned rate and its evidence, NULLs where there was none.
    registry_rate, rate, passes, at = _stored(city.url, DEAF)
    assert registry_rate == pytest.approx(REGISTRY)
    assert rate == pytest.approx(deaf.miss_rate_learned, abs=1e-6)
    assert passes == pytest.approx(deaf.passes, rel=1e-6)
    assert at == NOW
    with psycopg.connect(city.url) as conn:
        stored = {
            str(r): (m, p, a)
            for r, m, p, a in conn.execute(
                "SELECT reader_id, miss_rate_learned, miss_rate_passes, miss_rate_learned_at "
                "FROM readers"
            )
        }
    for r in city.run.readers:
        if r.passes is None:
            assert stored[r.reader_id] == (None, None, None)
        else:
            assert stored[r.reader_id][2] == NOW


def test_the_readers_api_flags_the_deaf_reader(
    city: City, client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    with psycopg.connect(city.url) as conn:  # every reader's gateway answers
        conn.execute("UPDATE readers SET last_heard_at = now()")
    got = client.get(f"/api/v1/readers/{DEAF}", headers=tokens["officer"])
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["health"] == "deaf"
    assert body["miss_rate"] == pytest.approx(REGISTRY)
    assert body["miss_rate_learned"] > 0.75
    assert body["miss_rate_passes"] >= 60
    assert datetime.fromisoformat(body["miss_rate_learned_at"]) == NOW
    listed = client.get("/api/v1/readers?limit=200", headers=tokens["admin"]).json()["items"]
    health = {r["reader_id"]: r["health"] for r in listed}
    assert [r for r, h in health.items() if h == "deaf"] == [DEAF]
    assert set(health.values()) == {"online", "deaf"}


def test_an_import_keeps_what_was_learned(
    city: City, client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    before = _stored(city.url, DEAF)
    with psycopg.connect(city.url) as conn:
        row = conn.execute("SELECT lon, lat FROM readers WHERE reader_id = %s", (DEAF,)).fetchone()
    assert row is not None
    body = [{"reader_id": DEAF, "protocol": "r2000", "lon": row[0], "lat": row[1],
             "miss_rate": 0.25}]  # fmt: skip
    got = client.post("/api/v1/readers/import", json=body, headers=tokens["admin"])
    assert got.status_code == 200, got.text
    assert got.json()["updated"] == [DEAF]
    after = _stored(city.url, DEAF)
    assert after[0] == pytest.approx(0.25)  # the registry's figure is the operator's
    assert after[1:] == before[1:]  # the learned one stays


def test_the_loaded_network_uses_the_learned_rate_and_picks_up_new_ones(city: City) -> None:
    learned = {r.reader_id: r for r in city.run.readers}
    quiet = next(r.reader_id for r in city.run.readers if r.passes is None)
    cache = NetworkCache(refresh_s=3600.0)
    with psycopg.connect(city.url) as conn:
        loaded = cache.get(conn)
        paths = loaded.reader_paths
        assert paths.miss_rate_of(DEAF) == pytest.approx(learned[DEAF].miss_rate_learned, abs=1e-6)
        assert paths.miss_rate_of(quiet) == pytest.approx(REGISTRY)  # nothing learned
        assert cache.current(loaded.network_id) is loaded
        # A later run learns otherwise: seen at the next look, not before.
        conn.execute("UPDATE readers SET miss_rate_learned = 0.5 WHERE reader_id = %s", (DEAF,))
        conn.commit()
        assert cache.get(conn) is loaded
        cache.refresh_s = 0.0
        assert cache.current(loaded.network_id) is None  # the async views look in a thread
        # The request that looks goes on with the loaded network; the rebuild (and its
        # warm-up) runs in a thread and swaps in when done.
        assert cache.get(conn) is loaded
        assert cache.wait_refreshed(60)
        refreshed = cache.get(conn)
        assert refreshed is not loaded
        assert refreshed.network_id == loaded.network_id
        assert refreshed.graph is loaded.graph
        assert refreshed.reader_paths.miss_rate_of(DEAF) == pytest.approx(0.5)
        assert refreshed.reader_paths.miss_rate_of(quiet) == pytest.approx(REGISTRY)
        assert cache.get(conn) is refreshed  # unchanged since: kept
        # A reader moved (an import in another API process): the whole network is reloaded.
        node = refreshed.reader_nodes[quiet]
        other = next(n for n in refreshed.reader_nodes.values() if n != node)
        conn.execute("UPDATE readers SET node_id = %s WHERE reader_id = %s", (other, quiet))
        conn.commit()
        moved = cache.get(conn)
        assert moved.reader_nodes[quiet] == other
        assert moved.graph is not refreshed.graph
        conn.execute("UPDATE readers SET node_id = %s WHERE reader_id = %s", (node, quiet))
        conn.commit()
        conn.execute(
            "UPDATE readers SET miss_rate_learned = %s WHERE reader_id = %s",
            (learned[DEAF].miss_rate_learned, DEAF),
        )
        conn.commit()


# --- the command and the engine's schedule, on a straight road -----------------------------


def _rides(url: str, tags: int, deaf: str, at: datetime) -> None:
    """``tags`` bikes ride R0 -> R5 at 5 m/s; ``deaf`` hears none of them."""
    step_us = int(SPACING_M / 5.0 * 1e6)
    t0 = int(at.timestamp() * 1e6)
    rows = [
        (f"T{k:03d}", f"R{i}", t0 + k * 600_000_000 + i * step_us)
        for k in range(tags)
        for i in range(6)
        if f"R{i}" != deaf
    ]
    frame = pd.DataFrame(rows, columns=["tag_id", "reader_id", "closest_at_us"])
    frame = frame.assign(
        first_at_us=frame["closest_at_us"] - 1_000_000,
        last_at_us=frame["closest_at_us"] + 1_000_000,
        peak_rssi_dbm=np.float32(-50.0),
        read_count=np.int32(5),
        direction="",
    )
    with psycopg.connect(url) as conn:
        store_passages(conn, frame, partitions=PartitionKeeper())


@pytest.fixture(scope="module")
def line_db(pg_admin_url: str) -> Iterator[str]:
    """The straight road (R0 ... R5, registry 0.1) where R2 hears none of 60 bikes."""
    name, url = create_migrated_database(pg_admin_url)
    try:
        line_city(url)
        _rides(url, 60, "R2", datetime.now(UTC) - timedelta(days=1))
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def line(line_db: str) -> str:
    """:func:`line_db` with nothing learned yet."""
    with psycopg.connect(line_db) as conn:
        conn.execute(
            "UPDATE readers SET miss_rate_learned = NULL, miss_rate_passes = NULL, "
            "miss_rate_learned_at = NULL"
        )
    return line_db


def test_the_command_learns_and_prints_each_reader(
    line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAGTRAIL_DATABASE_URL", line)
    monkeypatch.setenv("TAGTRAIL_MQTT_URL", "mqtt://127.0.0.1:1")  # never used
    result = CliRunner().invoke(
        app, ["readers", "learn-miss-rates", "--days", "7", "--max-passages", "250", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["tags"] == 50  # the sample: whole tags of 5 passages, fewer than 250 before each
    by_id = {r["reader_id"]: r for r in doc["readers"]}
    assert set(by_id) == {f"R{i}" for i in range(6)}
    assert by_id["R2"]["deaf"]
    assert by_id["R2"]["learned_miss_rate"] > 0.8  # 50 passes, none heard
    assert by_id["R2"]["registry_miss_rate"] == pytest.approx(0.1)
    # The ends of the road are never passed inside a ride: no evidence, nothing stored.
    assert (by_id["R0"]["learned_miss_rate"], by_id["R0"]["passes"]) == (None, None)
    assert by_id["R1"]["learned_miss_rate"] < 0.2
    assert not by_id["R1"]["deaf"]
    assert _stored(line, "R0")[1:] == (None, None, None)
    assert _stored(line, "R2")[1] == pytest.approx(by_id["R2"]["learned_miss_rate"], abs=1e-4)
    # The sample is deterministic: a rerun learns the same.
    again = CliRunner().invoke(
        app, ["readers", "learn-miss-rates", "--max-passages", "250", "--json"]
    )
    assert orjson.loads(again.stdout)["readers"] == doc["readers"]
    table = CliRunner().invoke(app, ["readers", "learn-miss-rates", "--max-passages", "250"])
    assert table.exit_code == 0, table.output
    assert "R2" in table.output
    assert "deaf" in table.output


def test_the_engine_schedule_runs_the_job_in_a_child_process_when_due_only(line: str) -> None:
    runs: list[JobOptions] = []
    stop = threading.Event()

    def runner(options: JobOptions, stop_: threading.Event) -> bool:
        runs.append(options)
        ok = run_in_process(options, stop_)  # what the engine runs
        threading.Timer(0.3, stop.set).start()  # a few more looks, then stop
        return ok

    learn_periodically(
        line, interval_s=3600.0, stop=stop, first_check_s=0.0, check_s=0.05, runner=runner
    )
    assert len(runs) == 1
    rate = _stored(line, "R2")[1]
    assert rate is not None
    assert rate > 0.8
    with psycopg.connect(line) as conn:
        last = reader_miss_rates.last_learned_at(conn)
    assert last is not None
    assert datetime.now(UTC) - last < timedelta(minutes=1)
    # Another worker (or a restarted engine) finds the run recent and skips it.
    assert JobOptions(line, 7.0, 100, 3600.0).run() is None


def test_learning_without_an_active_network_does_nothing(line: str) -> None:
    with psycopg.connect(line) as conn:
        conn.execute("UPDATE road_networks SET active = false")
        assert reader_miss_rates.learn(conn) is None
        conn.rollback()


def test_a_failed_periodic_run_is_tried_again_at_the_next_check(line: str) -> None:
    outcomes = [False, True]
    runs: list[bool] = []
    stop = threading.Event()

    def runner(options: JobOptions, stop_: threading.Event) -> bool:
        del options, stop_
        runs.append(outcomes[len(runs)])
        if len(runs) == len(outcomes):
            threading.Timer(0.3, stop.set).start()  # a few more looks, then stop
        return runs[-1]

    learn_periodically(
        line, interval_s=3600.0, stop=stop, first_check_s=0.0, check_s=0.05, runner=runner
    )
    assert runs == [False, True]  # retried at once, then not again within the interval
