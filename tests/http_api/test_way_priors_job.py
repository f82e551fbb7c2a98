"""The way-prior job (migration 0150, track_engine.db.way_priors) against a real database.

A small simulated city with its passages stored: the engine's periodic job (miss rates, then
the way prior, as the engine runs it) learns and stores the fleet's way prior as the engine's
login; the network the API loads carries it into path choice; the API's login only reads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from api_helpers import create_migrated_database
from psycopg import sql
from testsupport import drop_database

from api.network.service import NetworkCache
from api.registry import loaders as registry
from simulators.city import generate_city
from simulators.readers import place_readers
from simulators.rf import simulate_reads
from simulators.riders import generate_population, trajectories
from tagtrail.bench.engine_replay import estimate_passages
from track_engine.db import network, way_priors
from track_engine.db.miss_rate_schedule import JobOptions
from track_engine.db.writer import PartitionKeeper, store_passages
from track_engine.paths import NegativeEvidenceChooser
from track_engine.way_prior import WayPrior

START = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
SEED = 5


def _login(admin_url: str, url: str, group: str) -> Iterator[str]:
    """``url`` as a fresh LOGIN member of ``group`` (dropped afterwards)."""
    role = f"tt_wp_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                sql.Identifier(role), sql.Identifier(group)
            )
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


@pytest.fixture(scope="module")
def city_db(pg_admin_url: str) -> Iterator[str]:
    name, url = create_migrated_database(pg_admin_url)
    roads = generate_city(seed=SEED, size_m=1500.0)
    population = generate_population(roads, seed=SEED, bikes=300, start=START, hours=2.0, thefts=0)
    readers = place_readers(roads, seed=SEED, fraction=0.5, miss_rate=0.3)
    reads, _ = simulate_reads(roads, readers, trajectories(roads, population, seed=SEED), seed=SEED)
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn, name="way city", source="test:ways", origin_lat=roads.origin_lat,
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
                    "miss_rate": 0.3,
                }
            ),
            network_id=network_id,
        )
        store_passages(conn, estimate_passages(reads, readers), partitions=PartitionKeeper())
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


def test_the_engine_job_learns_stores_and_the_network_loads_the_way_prior(
    pg_admin_url: str, city_db: str
) -> None:
    days = (datetime.now(UTC) - START).days + 2  # the passages are of START's morning
    for engine_url in _login(pg_admin_url, city_db, "tagtrail_engine"):
        assert JobOptions(engine_url, days, 200_000, 3600.0).run() is not None
        with psycopg.connect(engine_url) as conn:
            learned_at = way_priors.last_learned_at(conn)
            result = way_priors.learn(conn, days=days)
    assert learned_at is not None
    assert datetime.now(UTC) - learned_at < timedelta(minutes=5)
    assert result is not None
    assert result.rides > 100
    with psycopg.connect(city_db) as conn:
        arrays = network.load_network(conn)
        registry_only = network.load_network(conn, learned=False)
    assert arrays is not None
    assert registry_only is not None
    assert registry_only.way_prior is None  # the miss-rate job's own prior load stays bare
    stored = arrays.way_prior
    assert isinstance(stored, WayPrior)
    assert set(stored.rides) == set(result.prior.rides)
    for pair, ways in result.prior.rides.items():
        assert set(stored.rides[pair]) == set(ways)
        for via, n in ways.items():
            assert stored.rides[pair][via] == pytest.approx(n, rel=1e-5)
    # A pair whose rides split between two ways: the loaded reader paths carry the prior,
    # and the default chooser ranks the fleet's favourite way first among equal-reader ways.
    paths = arrays.reader_paths(arrays.road_graph())
    assert paths.way_prior is stored
    split = next((p, w) for p, w in stored.rides.items() if len(w) >= 2 and max(w.values()) >= 5.0)
    (a, b), ways = split
    ranked = NegativeEvidenceChooser().ranked(paths, a, b, 600.0)
    bare = NegativeEvidenceChooser(prior=WayPrior()).ranked(paths, a, b, 600.0)
    shift = {c.nodes: s for s, c in ranked}
    vias = [c.missed_readers for _, c in bare]
    for s, c in bare:
        assert shift[c.nodes] - s == pytest.approx(stored.loglik(a, b, c.missed_readers, vias))


def test_a_later_run_replaces_the_prior_without_deleting(pg_admin_url: str, city_db: str) -> None:
    later = way_priors.WayPriorRun(
        learned_at=datetime.now(UTC) + timedelta(seconds=1), since=START,
        prior=WayPrior({("R0001", "R0002"): {("R0003",): 3.0}}), rides=3, passages=9, tags=3,
        seconds=0.0,
    )  # fmt: skip
    for engine_url in _login(pg_admin_url, city_db, "tagtrail_engine"):
        with psycopg.connect(engine_url) as conn:
            assert way_priors.store(conn, later) == 1
            conn.commit()
            assert network.load_way_prior(conn) == later.prior
            zeroed = conn.execute("SELECT count(*) FROM way_priors WHERE rides = 0").fetchone()
    assert zeroed is not None
    assert zeroed[0] > 0  # the earlier run's ways stay, no longer ridden


def test_only_the_engine_writes_the_way_prior(pg_admin_url: str, city_db: str) -> None:
    for api_url in _login(pg_admin_url, city_db, "tagtrail_api"):
        with psycopg.connect(api_url) as conn:
            conn.execute("SELECT count(*) FROM way_priors").fetchone()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "INSERT INTO way_priors (from_reader, to_reader, via, rides, learned_at) "
                    "VALUES ('R0001', 'R0002', '[]', 1, now())"
                )


def test_the_api_network_cache_picks_up_a_new_way_prior(pg_admin_url: str, city_db: str) -> None:
    cache = NetworkCache(refresh_s=3600.0)
    with psycopg.connect(city_db) as conn:
        loaded = cache.get(conn)
        before = loaded.reader_paths.way_prior
        # A later run stores another prior (here: one pair's rides, written by hand).
        conn.execute("DELETE FROM way_priors")
        conn.execute(
            "INSERT INTO way_priors (from_reader, to_reader, via, rides, learned_at) "
            "VALUES ('R0001', 'R0002', '[]', 7, now())"
        )
        conn.commit()
        assert cache.get(conn) is loaded  # not before the next look
        cache.refresh_s = 0.0
        assert cache.get(conn) is loaded
        assert cache.wait_refreshed(60)
        refreshed = cache.get(conn)
    assert refreshed is not loaded
    assert refreshed.reader_paths.way_prior == WayPrior({("R0001", "R0002"): {(): 7.0}})
    assert refreshed.reader_paths.way_prior != before
