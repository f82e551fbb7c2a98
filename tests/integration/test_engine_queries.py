"""Following a bike on the real PostgreSQL: last seen, next readers with ETA window (the road
model blended with where tags went from the reader, the heading and the bike's own habits),
companions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from api.registry import loaders as registry
from api.tracking import departure_store
from api.tracking import store as queries
from api.tracking.companion_store import companions
from api.tracking.prediction import road_model
from track_engine.db.writer import PartitionKeeper, store_passages, store_reads
from track_engine.passages import PASSAGE_COLUMNS
from track_engine.roads import ReaderPaths, RoadGraph, precompute_reader_paths

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
T0_US = int(T0.timestamp() * 1_000_000)
US = 1_000_000
TARGET = "E2801100000000000000A001"


@dataclass(frozen=True)
class Network:
    """Stands in for the API's LoadedNetwork: anything with ``reader_paths``."""

    reader_paths: ReaderPaths


def network() -> Network:
    # A line of nodes 100 m apart: R1 on 0, R2 on 2, R3 on 5, R4 on 9.
    n = 10
    xy = np.column_stack([np.arange(n) * 100.0, np.zeros(n)])
    graph = RoadGraph.from_arrays(
        node_lonlat=np.column_stack([121.0 + xy[:, 0] / 96_000, np.full(n, 30.0)]),
        node_xy_m=xy,
        edge_src=np.arange(n - 1),
        edge_dst=np.arange(1, n),
        both_directions=True,
    )
    return Network(precompute_reader_paths(graph, {"R1": 0, "R2": 2, "R3": 5, "R4": 9}))


def rows(*visits: tuple[str, str, float]) -> pd.DataFrame:
    """Passages (tag, reader, seconds after T0), in range ±1 s around the closest approach."""
    closest = np.array([T0_US + round(s * US) for _, _, s in visits], dtype=np.int64)
    return pd.DataFrame(
        {
            "tag_id": [t for t, _, _ in visits],
            "reader_id": [r for _, r, _ in visits],
            "first_at_us": closest - US,
            "last_at_us": closest + US,
            "closest_at_us": closest,
            "peak_rssi_dbm": -50.0,
            "read_count": 10,
            "direction": "",
        }
    )[PASSAGE_COLUMNS]


def register(conn: psycopg.Connection, tag_id: str, n: int) -> int:
    ids = registry.register_bikes(
        conn,
        [
            registry.Registration(
                owner_name=f"Owner {n}", owner_phone="13800000000",
                owner_id_number=f"{n:018d}", brand="Yadea", colour="red",
                frame_number=f"FRAME{n:04d}", plate=f"ZB{n:05d}", tag_id=tag_id,
            )
        ],
        registered_at=T0 - timedelta(days=60),
        id_hash_key=b"k" * 32,
    )  # fmt: skip
    return ids[f"ZB{n:05d}"]


@pytest.fixture
def conn(db_url: str) -> psycopg.Connection:
    with psycopg.connect(db_url) as c:
        yield c


def test_last_seen_prefers_a_newer_raw_read_over_the_last_passage(conn: psycopg.Connection) -> None:
    bike = register(conn, TARGET, 1)
    assert queries.last_seen(conn, bike_id=bike) is None
    keeper = PartitionKeeper()
    store_passages(conn, rows((TARGET, "R1", 0), (TARGET, "R2", 40)), partitions=keeper)
    seen = queries.last_seen(conn, bike_id=bike)
    assert seen is not None
    assert (seen.reader_id, seen.source, seen.at) == ("R2", "passage", T0 + timedelta(seconds=40))
    reads = pd.DataFrame(
        {"tag_id": [TARGET], "read_at_us": [T0_US + 90 * US], "reader_id": ["R3"], "antenna": [1],
         "rssi_dbm": [-60.0], "reader_seq": [1]}
    )  # fmt: skip
    store_reads(conn, reads, gateway_id="gw", partitions=keeper)
    # A raw read counts once its passage is stored (reads are keyed by time, not tag).
    seen = queries.last_seen(conn, bike_id=bike)
    assert seen is not None
    assert (seen.reader_id, seen.source) == ("R2", "passage")
    store_passages(conn, rows((TARGET, "R3", 90)), partitions=keeper)
    seen = queries.last_seen(conn, bike_id=bike)
    assert seen is not None
    assert (seen.reader_id, seen.source) == ("R3", "passage")
    assert seen.at.tzinfo is not None


def _road(previous: str, reader: str) -> dict[str, float]:
    """The road model's answer on the test network (the prior the history is blended with)."""
    answer = road_model(network().reader_paths, reader, previous)
    return {i.reader_id: i.probability for i in answer}


def test_next_readers_from_history_with_eta(conn: psycopg.Connection) -> None:
    bike = register(conn, TARGET, 1)
    keeper = PartitionKeeper()
    # Yesterday, 12 tags went R1 -> R2 (about 40 s) and 2 went R1 -> R3 (about 100 s).
    history = []
    for k in range(14):
        tag, start = f"E28011000000000000000{k:03d}", -86_400 + 600 * k
        to, travel = ("R2", 38 + k) if k < 12 else ("R3", 100)
        history += [(tag, "R1", start), (tag, to, start + travel)]
    store_passages(conn, rows(*history), partitions=keeper)
    store_passages(conn, rows((TARGET, "R1", 0)), partitions=keeper)
    got = departure_store.next_readers(conn, bike_id=bike, network=network(), limit=3)
    assert [(n.reader_id, n.source) for n in got[:2]] == [("R2", "history"), ("R3", "history")]
    # Dirichlet mix: 12 of 14 departures plus 3 pseudo-departures shared as the road model says.
    road = _road("", "R1")
    assert got[0].probability == pytest.approx((12 + 3 * road["R2"]) / 17)
    assert got[0].eta == T0 + timedelta(seconds=43.5)  # median of 38..49
    # Ridden 12 times (10 or more): the fleet's 10th-90th percentile x0.9 and x1.1, 10 s more.
    p10, p90 = np.quantile(np.arange(38, 50) + 0.0, [0.1, 0.9])
    assert abs((got[0].eta_from - T0).total_seconds() - (p10 * 0.9 - 10)) < 1e-6
    assert abs((got[0].eta_to - T0).total_seconds() - (p90 * 1.1 + 10)) < 1e-6
    assert got[0].distance_m == pytest.approx(200.0)
    # Ridden twice: the window is the road distance (500 m) at 10-32 km/h, 10 s more.
    assert abs((got[1].eta_from - T0).total_seconds() - (500 / (32 / 3.6) - 10)) < 1e-6
    assert abs((got[1].eta_to - T0).total_seconds() - (500 / (10 / 3.6) + 10)) < 1e-6
    assert sum(n.probability for n in got) == pytest.approx(1.0)


def test_next_readers_fall_back_to_the_road_model(conn: psycopg.Connection) -> None:
    bike = register(conn, TARGET, 1)
    store_passages(conn, rows((TARGET, "R3", 0)), partitions=PartitionKeeper())
    got = departure_store.next_readers(conn, bike_id=bike, network=network(), limit=2)
    # No history and no previous reader: the road length behind each reader within 1 km (R2:
    # 300 m, R4: 100 m, R1 behind R2: 100 m, heard only if R2 missed) at 30% misses each.
    assert [(n.reader_id, n.source) for n in got] == [("R2", "road"), ("R4", "road")]
    raw = {"R2": 300 * 0.7, "R4": 100 * 0.7, "R1": 100 * 0.3 * 0.7}
    total = sum(raw.values())
    assert [n.probability for n in got] == pytest.approx([raw["R2"] / total, raw["R4"] / total])
    assert got[0].eta == T0 + timedelta(seconds=300 / 4.5)


def test_the_heading_comes_from_the_bikes_previous_reader(conn: psycopg.Connection) -> None:
    bike = register(conn, TARGET, 1)
    keeper = PartitionKeeper()
    # Yesterday tags that came from R2 went on to R4; tags that came from R4 went back to R2.
    history = []
    for k in range(12):
        tag, start = f"E28011000000000000000{k:03d}", -86_400 + 600 * k
        came, to = ("R2", "R4") if k % 2 else ("R4", "R2")
        history += [(tag, came, start), (tag, "R3", start + 60), (tag, to, start + 120)]
    store_passages(conn, rows(*history), partitions=keeper)
    store_passages(conn, rows((TARGET, "R2", -70), (TARGET, "R3", 0)), partitions=keeper)
    got = departure_store.next_readers(conn, bike_id=bike, network=network(), limit=2)
    assert got[0].reader_id == "R4"
    assert got[0].probability > 0.8  # the fleet alone: 0.5
    # Without history the road model alone says the same: R2 is the way back.
    assert _road("R2", "R3")["R4"] > _road("R2", "R3")["R2"]


def test_companions_are_scored_against_how_busy_the_road_is(conn: psycopg.Connection) -> None:
    keeper = PartitionKeeper()
    thief, commuter = "E2801100000000000000B002", "E2801100000000000000C003"
    register(conn, thief, 2)
    target = [(TARGET, "R1", 0), (TARGET, "R2", 40), (TARGET, "R3", 100), (TARGET, "R1", 3000)]
    # The thief rides beside the stolen bike: 2-3 s behind at three readers, seen nowhere else.
    beside = [(thief, "R1", 2), (thief, "R2", 43), (thief, "R3", 102)]
    # A busy commuter passes R1 every 30 s all morning, so meets the target at R1 twice by chance.
    busy = [(commuter, "R1", s) for s in range(-3000, 6000, 30)]
    store_passages(conn, rows(*target, *beside, *busy), partitions=keeper)
    since, until = T0 - timedelta(hours=1), T0 + timedelta(hours=2)
    got = companions(conn, tag_id=TARGET, since=since, until=until, window_s=10)
    assert got[0].tag_id == thief
    assert (got[0].shared, got[0].readers) == (3, 3)
    assert got[0].bike_id is not None
    assert [p[0] for p in got[0].passages] == ["R1", "R2", "R3"]
    by_tag = {c.tag_id: c for c in got}
    # Shared twice too, but about as often as expected by chance: listed, scored low.
    assert by_tag[commuter].shared == 2
    assert by_tag[commuter].expected > 1.0
    assert by_tag[commuter].score < 1.0 < got[0].score


def test_next_readers_history_is_kept_per_loaded_network(conn: psycopg.Connection) -> None:
    bike = register(conn, TARGET, 1)
    keeper = PartitionKeeper()
    history = []
    for k in range(6):
        tag = f"E28011000000000000000{k:03d}"
        history += [(tag, "R1", -86_400 + 600 * k), (tag, "R2", -86_400 + 600 * k + 40)]
    store_passages(conn, rows(*history), partitions=keeper)
    store_passages(conn, rows((TARGET, "R1", 0)), partitions=keeper)
    net = network()
    first = departure_store.next_readers(conn, bike_id=bike, network=net, limit=2)
    assert [(n.reader_id, n.source) for n in first][:1] == [("R2", "history")]
    more = [(f"E28011000000000000001{k:03d}", "R1", -80_000 + 600 * k) for k in range(6)]
    more += [(t, "R3", s + 100) for t, _, s in more]
    store_passages(conn, rows(*more), partitions=keeper)
    again = departure_store.next_readers(conn, bike_id=bike, network=net, limit=2)
    assert again == first  # the same network: the answer of a minute ago
    fresh = departure_store.next_readers(conn, bike_id=bike, network=network(), limit=2)
    assert [n.reader_id for n in fresh] == ["R2", "R3"]
    road = _road("", "R1")
    assert fresh[1].probability == pytest.approx((6 + 3 * road["R3"]) / 15)
    assert fresh[1].probability > first[1].probability
