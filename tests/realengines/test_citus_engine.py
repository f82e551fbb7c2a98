"""TagTrail on a real Citus cluster (a coordinator and two workers, issue #19).

The schema is migrated against the coordinator and distributed by deploy/citus/distribute.sql
as written; then the shard-equivalence run of tests/integration/test_shards.py (one simulated
morning, published as a gateway would, into two engine workers) goes once into plain
PostgreSQL and once into Citus, and the two must agree row for row: reads, passages, alerts
and every bike's route built by the API's route service through the coordinator.
"""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import psycopg
import pytest
from citus_setup import distribution, migrate_and_distribute
from test_shards import ID_KEY, SHARDS, _routes, _run, _table, _wire_messages
from testsupport import create_database, drop_database

from api.registry import bikes
from api.registry import loaders as registry
from tagtrail.bench.engine_scenario import START
from tagtrail.demo import DemoOptions, load_registry, simulate
from track_engine.db.migrate import migrate
from track_engine.db.writer import PartitionKeeper, store_reads

pytestmark = [pytest.mark.citus, pytest.mark.slow]

BY_TAG = ("reads", "passages", "held_reads", "alerts")


def test_distribute_sql_runs_as_written_and_colocates_by_tag(citus_db: str) -> None:
    migrate_and_distribute(citus_db)
    tables = distribution(citus_db)
    colocation = {tables[t][2] for t in BY_TAG}
    assert all(tables[t][:2] == ("distributed", "tag_id") for t in BY_TAG), tables
    assert len(colocation) == 1, "reads, passages, held reads and alerts are not co-located"
    assert tables["watches"][0] == "reference"
    with psycopg.connect(citus_db) as conn:
        shards = conn.execute(
            "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'reads'::regclass"
        ).fetchone()
        triggers = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%live_notify'"
        ).fetchall()
    assert shards is not None
    assert shards[0] == 2, "reads' shards are not spread over 2 workers"
    assert triggers == [], "a live NOTIFY trigger survived on a distributed table"


def _results(
    url: str, mqtt_url: str, sim: Any, messages: list[tuple[int, bytes, int]]
) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        load_registry(conn, sim, source="generated:shards", id_hash_key=ID_KEY)
    per_worker = _run(url, mqtt_url, messages, [range(0, 2), range(2, SHARDS)])
    assert all(n > 0 for n in per_worker), per_worker
    return {
        "reads": _table(
            url,
            "SELECT tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq "
            "FROM reads ORDER BY 1, 2, 3, 4",
        ),
        "passages": _table(url, "SELECT * FROM passages ORDER BY 1, 2, 3, 4"),
        "alerts": _table(
            url,
            "SELECT w.bike_id, w.kind, a.tag_id, a.reader_id, a.read_at "
            "FROM alerts a JOIN watches w USING (watch_id) ORDER BY a.read_at, 4",
        ),
        "routes": _routes(url, sim),
    }


def test_citus_stores_what_plain_postgresql_stores(
    pg_admin_url: str, mqtt_url: str, citus_db: str
) -> None:
    # Smaller than test_shards.py's morning (150 bikes, 1 h): Citus stores a few hundred
    # reads a second here, and this runs in `make test`.
    sim = simulate(DemoOptions(seed=11, bikes=100, hours=0.5), start=START)
    messages = _wire_messages(sim)
    reads = len(sim.reads.drop_duplicates(["tag_id", "read_at_us", "reader_id", "antenna"]))
    name, plain = create_database(pg_admin_url)
    try:
        migrate(plain)
        expected = _results(plain, mqtt_url, sim, messages)
    finally:
        drop_database(pg_admin_url, name)
    migrate_and_distribute(citus_db)
    # The API's live channel, heard on the coordinator: the engine notifies after its commits.
    with psycopg.connect(citus_db, autocommit=True) as listener:
        listener.execute("LISTEN tagtrail_live")
        got = _results(citus_db, mqtt_url, sim, messages)
        heard = [orjson.loads(n.payload) for n in listener.notifies(timeout=1)]
    assert len(got["reads"]) == reads
    assert got["reads"] == expected["reads"]
    assert len(got["passages"]) > 100
    assert got["passages"] == expected["passages"]
    assert got["alerts"], "the stolen bike's alerts were not raised"
    assert got["alerts"] == expected["alerts"]
    assert got["routes"] == expected["routes"]
    with psycopg.connect(citus_db) as conn:
        alert_ids = {r[0] for r in conn.execute("SELECT alert_id FROM alerts").fetchall()}
    assert {n["id"] for n in heard if n["t"] == "alert"} == alert_ids
    assert any(n["t"] == "passage" for n in heard)


def test_redelivered_reads_are_duplicates_and_counted_as_stored(citus_db: str) -> None:
    """A distributed COPY meeting stored reads fails with XX000, not 23505: still a duplicate,
    and ``reads_stored`` counts only the new rows (Citus's INSERT counts attempted ones)."""
    migrate_and_distribute(citus_db)
    at = int(START.timestamp() * 1e6)
    first = pd.DataFrame(
        {
            "tag_id": [f"E2801100000000000000{i:04X}" for i in range(40)],
            "read_at_us": [at + i for i in range(40)],
            "reader_id": ["R0001"] * 40,
            "antenna": [1] * 40,
            "rssi_dbm": [-60.0] * 40,
            "reader_seq": list(range(40)),
        }
    )
    more = first.assign(read_at_us=first["read_at_us"] + 1_000_000)
    with psycopg.connect(citus_db) as conn:
        keeper = PartitionKeeper()
        assert store_reads(conn, first, gateway_id="gw-1", partitions=keeper) == 40
        conn.commit()
        again = pd.concat([first, more.iloc[:7]])
        assert store_reads(conn, again, gateway_id="gw-1", partitions=keeper) == 7
        conn.commit()
        row = conn.execute("SELECT count(*), count(DISTINCT (tag_id, read_at)) FROM reads")
        assert row.fetchone() == (47, 47)


def test_a_stolen_match_flag_is_notified_without_its_trigger(citus_db: str) -> None:
    """distribute.sql drops the flag's NOTIFY trigger; the API's add_flag sends it instead."""
    migrate_and_distribute(citus_db)
    with psycopg.connect(citus_db) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Wang Fang", owner_phone="13700000000",
                    owner_id_number="110101199003074258", brand="Yadea", colour="black",
                    frame_number="FRAMEFLAG80", plate="ZBFLAG80", tag_id="E28011A1000000000000F1A9",
                )
            ],
            registered_at=START,
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        theft_id, _ = registry.open_theft(
            conn, bike_id=ids["ZBFLAG80"], stolen_at=START, reported_at=START,
            place="gate", description="", case_number="C-FLAG-80",
        )  # fmt: skip
    with psycopg.connect(citus_db, autocommit=True) as listener:
        listener.execute("LISTEN tagtrail_live")
        with psycopg.connect(citus_db) as conn:
            match = bikes.StolenMatch("stolen_frame", ids["ZBFLAG80"], theft_id, "C-FLAG-80")
            flag_id = bikes.add_flag(
                conn, match=match, presented_by="registrar", event_id=None, detail={}
            )
        heard = [orjson.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
    assert heard == [{"t": "flag", "id": flag_id}]
