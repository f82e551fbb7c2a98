"""The demo city stored the way the engine stores it, for the benchmarks that ask the API.

:func:`seed_city` simulates the demo city (road network, readers, bikes, one theft) for some
hours and stores its reads and passages with the engine's own COPY writer and passage fold;
``tagtrail bench query`` and ``bench login-flood`` then ask about its bikes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from simulators.city import generate_city
from simulators.readers import place_readers
from tagtrail.demo import DemoOptions

_US = 1_000_000


def seed_city(database_url: str, *, data_dir: Path, hours: float, bikes: int) -> dict[str, Any]:
    """The demo city with its reads and passages stored; returns what the clients ask about."""
    from tagtrail.demo import load_registry, simulate
    from tagtrail.settings import Settings
    from track_engine.db.writer import PartitionKeeper, store_passages, store_reads
    from track_engine.passages import fold_passages

    start = datetime.now(UTC) - timedelta(hours=hours)
    sim = simulate(DemoOptions(bikes=bikes, hours=hours), start=start)
    reads = sim.reads
    frame = pd.DataFrame(
        {
            "tag_id": reads["tag_id"].astype(str).to_numpy(object),
            "read_at_us": reads["read_at_us"].to_numpy(np.int64),
            "reader_id": reads["reader_id"].astype(str).to_numpy(object),
            "antenna": reads["antenna"].to_numpy(np.int64),
            "rssi_dbm": reads["rssi_dbm"].to_numpy(np.float64),
            "reader_seq": np.arange(len(reads), dtype=np.int64),
        }
    )
    key = Settings(data_dir=data_dir).resolve_id_hash_key()
    with psycopg.connect(database_url) as conn:
        case = load_registry(conn, sim, source="bench-city", id_hash_key=key)
        keeper = PartitionKeeper()
        store_reads(conn, frame, gateway_id="bench-city", partitions=keeper)
        passages = fold_passages(
            frame[["tag_id", "reader_id", "antenna", "rssi_dbm", "read_at_us"]]
        )
        store_passages(conn, passages, partitions=keeper)
        rows = conn.execute(
            """SELECT DISTINCT p.bike_id, p.plate FROM plates p
               JOIN tag_bindings b ON b.bike_id = p.bike_id
               JOIN passages s ON s.tag_id = b.tag_id"""
        ).fetchall()
    return {
        "start_us": int(start.timestamp() * _US),
        "case": case,
        "readers": [r.reader_id for r in sim.readers],
        "reads": len(frame),
        "passages": len(passages),
        "bikes": [(int(b), str(p)) for b, p in rows],
    }


def city_readers() -> list[str]:
    """Reader ids of the demo city (the one :func:`seed_city` simulates)."""
    options = DemoOptions()
    city = generate_city(seed=options.seed, size_m=options.size_m)
    readers = place_readers(city, seed=options.seed, fraction=options.reader_fraction)
    return [r.reader_id for r in readers]
