"""The officers' lookups through the API on Citus answer as on plain PostgreSQL (issue #19).

One simulated half hour (registry, reads, passages folded from them, and an alert per read of
the stolen bike's watched tag, as the engine raises them) is stored the same way into a plain
PostgreSQL database and into a distributed one (coordinator + two workers, distribute.sql as
written); then the API, on each, is asked for every bike's route, last sighting, likely next
readers and where-now map, the open thefts' overview and the stolen bike's companions, and
every reader's departures (:mod:`api.tracking.departure_store`: where tags went next, by the way
they came and for one tag's own, with travel-time percentiles).
The answers must be equal, field for field. These are the queries Citus refused before (a LATERAL
subquery with LIMIT over a reference table, a self-join of passages not on the tag).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from api_helpers import KEYS, add_user, config, login
from citus_setup import migrate_and_distribute
from fastapi.testclient import TestClient
from testsupport import create_database, drop_database

from api.app import create_app
from api.tracking.departure_store import departures
from tagtrail.bench.engine_scenario import START
from tagtrail.demo import DemoOptions, SimulatedCity, load_registry, simulate
from track_engine.db.migrate import migrate
from track_engine.db.writer import PartitionKeeper, store_passages, store_reads
from track_engine.passages import fold_passages

pytestmark = [pytest.mark.citus, pytest.mark.slow]

REASON = {"reason": "engine equivalence"}
COMPANION = "E2801170000000000000C0DE"
HOUR = timedelta(hours=1)


def _store(url: str, sim: SimulatedCity) -> None:
    """Registry, reads, their passages and the watched tag's alerts, as the engine stores them;
    and a companion: an unregistered tag 2 s behind the stolen bike all the way."""
    reads = sim.reads.drop_duplicates(["tag_id", "read_at_us", "reader_id", "antenna"])
    frame = pd.DataFrame(
        {
            "tag_id": reads["tag_id"].astype(str).to_numpy(object),
            "read_at_us": reads["read_at_us"].to_numpy(np.int64),
            "reader_id": reads["reader_id"].astype(str).to_numpy(object),
            "antenna": reads["antenna"].to_numpy(np.int64),
            "rssi_dbm": reads["rssi_dbm"].to_numpy(np.float64),
        }
    )
    with psycopg.connect(url) as conn:
        load_registry(conn, sim, source="generated:lookups", id_hash_key=KEYS["id_hash_key"])
        conn.commit()
        watched = conn.execute(
            "SELECT w.watch_id, b.tag_id FROM watches w JOIN tag_bindings b USING (bike_id)"
        ).fetchall()
        follower = frame[frame["tag_id"] == watched[0][1]].assign(tag_id=COMPANION)
        follower["read_at_us"] += 2_000_000
        frame = pd.concat([frame, follower], ignore_index=True)
        frame["reader_seq"] = np.arange(len(frame), dtype=np.int64)
        keeper = PartitionKeeper()
        store_reads(conn, frame, gateway_id="gw-lookups", partitions=keeper)
        passages = fold_passages(
            frame[["tag_id", "reader_id", "antenna", "rssi_dbm", "read_at_us"]]
        )
        store_passages(conn, passages, partitions=keeper)
        conn.commit()
        for watch_id, tag_id in watched:
            mine = frame[frame["tag_id"] == tag_id]
            conn.execute(
                "INSERT INTO alerts (watch_id, tag_id, reader_id, read_at)"
                " SELECT %s, %s, r, timestamptz 'epoch' + t * interval '1 microsecond'"
                " FROM unnest(%s::text[], %s::bigint[]) AS u (r, t)",
                (watch_id, tag_id, list(mine["reader_id"]), [int(t) for t in mine["read_at_us"]]),
            )


def _answers(url: str, sim: SimulatedCity) -> dict[str, Any]:
    """Every lookup's answer through the API on ``url`` (status and JSON body)."""
    add_user(url, "the-officer", "officer")
    with psycopg.connect(url) as conn:
        bikes = conn.execute(
            "SELECT b.bike_id, p.plate FROM bikes b JOIN plates p USING (bike_id) ORDER BY 1"
        ).fetchall()
        thefts = [r[0] for r in conn.execute("SELECT theft_id FROM thefts ORDER BY 1")]
    window = {
        "since": (sim.start - timedelta(hours=1)).isoformat(),
        "until": (sim.start + timedelta(hours=2)).isoformat(),
    }
    out: dict[str, Any] = {}
    with TestClient(create_app(config(url))) as client:
        officer = login(client, "the-officer")

        def get(path: str, **params: Any) -> tuple[int, Any]:
            got = client.get(path, params={**REASON, **params}, headers=officer)
            return got.status_code, got.json()

        for bike_id, plate in bikes:
            out[f"route {plate}"] = get(f"/api/v1/routes/{plate}", **window)
            status, seen = get(f"/api/v1/bikes/{bike_id}/last-seen")
            out[f"last seen {bike_id}"] = status, seen
            out[f"next readers {bike_id}"] = get(f"/api/v1/bikes/{bike_id}/next-readers")
            if status == 200:
                at = datetime.fromisoformat(seen["at"]) + timedelta(minutes=5)
                out[f"where now {bike_id}"] = get(
                    f"/api/v1/bikes/{bike_id}/where-now", at=at.isoformat()
                )
        status, overview = get("/api/v1/thefts/open/last-seen")
        overview.pop("generated_at", None)  # the clock's, not the data's
        out["open thefts"] = status, overview
        for theft_id in thefts:
            out[f"companions {theft_id}"] = get(f"/api/v1/thefts/{theft_id}/companions", **window)
    tag = str(sim.reads["tag_id"].iloc[0])  # its previous reader and own departures too
    with psycopg.connect(url) as conn:
        for reader in sorted({r.reader_id for r in sim.readers}):
            out[f"departures {reader}"] = (
                200,
                departures(tag, reader, sim.start + HOUR).run(conn),
            )
    return out


@pytest.fixture(scope="module")
def city() -> SimulatedCity:
    """A small morning: 60 bikes, half an hour, one of them stolen and watched."""
    return simulate(DemoOptions(seed=11, bikes=60, hours=0.5), start=START)


@pytest.fixture
def plain_answers(pg_admin_url: str, city: SimulatedCity) -> Iterator[dict[str, Any]]:
    """The answers on plain PostgreSQL."""
    name, url = create_database(pg_admin_url)
    try:
        migrate(url)
        _store(url, city)
        yield _answers(url, city)
    finally:
        drop_database(pg_admin_url, name)


def test_lookups_on_citus_answer_as_on_plain_postgresql(
    citus_db: str, city: SimulatedCity, plain_answers: dict[str, Any]
) -> None:
    migrate_and_distribute(citus_db)
    _store(citus_db, city)
    got = _answers(citus_db, city)
    ok = {k for k, (status, _) in plain_answers.items() if status == 200}
    # The data answers every kind of lookup, so each is compared on a real answer.
    kinds = ("route", "last seen", "next readers", "where now", "open thefts", "companions")
    for kind in (*kinds, "departures"):
        statuses = sorted({v[0] for k, v in plain_answers.items() if k.startswith(kind)})
        assert any(k.startswith(kind) for k in ok), f"no {kind} answered: {statuses}"
    seen = [plain_answers[k][1] for k in ok if k.startswith("last seen")]
    assert {s["source"] for s in seen} == {"passage", "read"}
    # Every reader's departures compared directly too (a half hour holds few of them).
    assert any(plain_answers[k][1].fleet for k in ok if k.startswith("departures"))
    found = [plain_answers[k][1]["companions"] for k in ok if k.startswith("companions")]
    assert COMPANION in {c["tag_id"] for c in found[0]}
    assert got.keys() == plain_answers.keys()
    failed = {k: v for k, v in got.items() if v[0] != plain_answers[k][0]}
    assert not failed, f"{len(failed)} lookups answered otherwise on Citus, e.g. {failed}"
    differ = [k for k in plain_answers if got[k] != plain_answers[k]]
    assert not differ, f"{len(differ)} answers differ on Citus, e.g. {differ[:5]}"
