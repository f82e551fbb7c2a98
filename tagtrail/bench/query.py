"""``tagtrail bench query``: route, last-seen and next-readers latency, 16 concurrent clients.

Set-up, on a fresh database: ``stored_rows`` reads (and a fifteenth as many passages, at the
city's readers) preloaded in the partition of the day the city's hours fall in; then the demo
city (road network, readers, bikes, one theft) simulated for ``hours`` and stored the way the
engine stores it (its COPY writer and passage fold). The API runs as its own process; each
client thread logs in as the officer and, until ``seconds`` have passed, asks in turn for a
random bike's route (``/api/v1/routes/{plate}``), last sighting and likely next readers, with
a reason, as officers must (so every answer is audited too, as in production). The API runs
with ``api_workers`` worker processes (``tagtrail api --workers``).
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg

from simulators.city import generate_city
from simulators.readers import place_readers
from tagtrail.bench.common import (
    ADMIN_URL,
    BenchError,
    Service,
    fresh_database,
    load_avg,
    machine,
    percentiles_ms,
    service_env,
    wait_for,
)
from tagtrail.bench.latency import login, officer, up
from tagtrail.bench.preload import preload_passages, preload_reads
from tagtrail.bench.services import free_port
from tagtrail.demo import DemoOptions

_US = 1_000_000
ENDPOINTS = ("route", "last_seen", "next_readers")


@dataclass(frozen=True)
class QueryOptions:
    """What one ``tagtrail bench query`` run does."""

    stored_rows: int = 50_000_000
    clients: int = 16
    seconds: float = 30.0
    bikes: int = 120
    hours: float = 3.0
    api_workers: int = 1  # ``tagtrail api --workers``
    admin_url: str = ADMIN_URL


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


def _city_readers() -> list[str]:
    """Reader ids of the demo city (the one :func:`seed_city` simulates)."""
    options = DemoOptions()
    city = generate_city(seed=options.seed, size_m=options.size_m)
    readers = place_readers(city, seed=options.seed, fraction=options.reader_fraction)
    return [r.reader_id for r in readers]


def _client(
    base: str,
    token: str,
    bikes: list[tuple[int, str]],
    *,
    until: float,
    seed: int,
    out: dict[str, list[float]],
    errors: list[str],
) -> None:
    rng = np.random.default_rng(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        turn = 0
        while time.monotonic() < until:
            bike_id, plate = bikes[int(rng.integers(len(bikes)))]
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            path = {
                "route": f"/api/v1/routes/{plate}",
                "last_seen": f"/api/v1/bikes/{bike_id}/last-seen",
                "next_readers": f"/api/v1/bikes/{bike_id}/next-readers",
            }[name]
            started = time.perf_counter()
            resp = client.get(path, params={"reason": "benchmark"})
            elapsed = time.perf_counter() - started
            if resp.status_code == 404:
                # "not seen in that window": an answer too (timed), but counted apart
                out[f"{name}_not_found"].append(elapsed)
                continue
            if resp.status_code != 200:
                errors.append(f"{name} {resp.status_code}: {resp.text[:200]}")
                continue
            out[name].append(elapsed)


def run_query(opts: QueryOptions) -> dict[str, Any]:
    """Run the benchmark; return the figures as one document."""
    doc: dict[str, Any] = {
        "benchmark": "query latency",
        "options": {
            "stored_rows": opts.stored_rows,
            "clients": opts.clients,
            "seconds": opts.seconds,
            "bikes": opts.bikes,
            "hours": opts.hours,
            "api_workers": opts.api_workers,
        },
    }
    with fresh_database(opts.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        start_us = int((datetime.now(UTC) - timedelta(hours=opts.hours)).timestamp() * _US)
        readers = _city_readers()
        if opts.stored_rows:
            doc["preload_reads"] = preload_reads(
                url, rows=opts.stored_rows, before_us=start_us - 60 * _US, tags=1_000_000
            )
            doc["preload_passages"] = preload_passages(
                url,
                rows=opts.stored_rows // 15,
                before_us=start_us - 60 * _US,
                readers=readers,
                tags=1_000_000,
            )
        seeded = seed_city(url, data_dir=data_dir, hours=opts.hours, bikes=opts.bikes)
        form = officer(url)
        doc["machine"] = machine(url)
        port = free_port()
        env = service_env(url, "mqtt://127.0.0.1:1", "tagtrail-bench/query", data_dir)
        api = Service(
            "api",
            ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(opts.api_workers)],
            env=env,
            log_dir=Path(tmp),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: up(base), timeout_s=60, what="the API", services=[api])
            token = login(base, form)
            out: dict[str, list[float]] = {
                key: [] for name in ENDPOINTS for key in (name, f"{name}_not_found")
            }
            errors: list[str] = []
            load_before = load_avg()
            until = time.monotonic() + opts.seconds
            threads = [
                threading.Thread(
                    target=_client,
                    args=(base, token, seeded["bikes"]),
                    kwargs={"until": until, "seed": i, "out": out, "errors": errors},
                )
                for i in range(opts.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(opts.seconds + 60)
            api.check()
        finally:
            api.stop()
    if errors:
        raise BenchError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    doc.update(
        {
            "city_reads": seeded["reads"],
            "city_passages": seeded["passages"],
            "bikes_asked": len(seeded["bikes"]),
            "load_avg_before": load_before,
            "load_avg_after": load_avg(),
        }
    )
    for name in ENDPOINTS:
        doc[name] = {
            "requests": len(out[name]),
            "not_found": len(out[f"{name}_not_found"]),
            **percentiles_ms(out[name]),
        }
    return doc


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a query document."""
    rows = [
        ("stored reads", f"{doc['options']['stored_rows']:,}"),
        ("clients", str(doc["options"]["clients"])),
        ("API worker processes", str(doc["options"].get("api_workers", 1))),
    ]
    for name in ENDPOINTS:
        r = doc[name]
        rows.append(
            (
                f"{name}: p50 / p99 (n)",
                f"{r['p50_ms']:,.1f} / {r['p99_ms']:,.1f} ms ({r['requests']:,})",
            )
        )
    rows.append(("load before → after", f"{doc['load_avg_before']} → {doc['load_avg_after']}"))
    return rows
