"""``tagtrail bench query``: route, last-seen and next-readers latency, 16 concurrent clients.

Set-up, on a fresh database: ``stored_rows`` reads (and a fifteenth as many passages, at the
city's readers) preloaded in the partition of the day the city's hours fall in; then the demo
city (road network, readers, bikes, one theft) simulated for ``hours`` and stored the way the
engine stores it (its COPY writer and passage fold); then a ``CHECKPOINT``, so the clients do
not race PostgreSQL flushing the preload (rows stored over months were flushed long ago). The
API runs as its own process, with ``api_workers`` worker processes (``tagtrail api
--workers``). Each client logs in as the officer and, until ``seconds`` have passed, asks in
turn for a random bike's route (``/api/v1/routes/{plate}``), last sighting and likely next
readers, with a reason, as officers must (so every answer is audited too, as in production): a
closed loop, one request at a time on one keep-alive connection, every request timed from its
first byte sent to its last byte received, every answer checked (200, or 404 counted apart).

Clients (``client``): ``"processes"`` (the default) runs each client as its own process
speaking plain HTTP/1.1 on a socket, so the clients share no interpreter lock and cost
~0.15 ms of CPU a request; ``"threads"`` is the earlier client, one httpx client per thread
in the benchmark's own process (one GIL for all 16, ~0.9 ms of CPU a request), kept to
compare (docs/performance.md, "Queries: async lookups…").
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from tagtrail.bench.api_under_test import api_service
from tagtrail.bench.city_seed import city_readers, seed_city
from tagtrail.bench.common import (
    ADMIN_URL,
    BenchError,
    fresh_database,
    load_avg,
    machine,
    percentiles_ms,
)
from tagtrail.bench.engines import Kind, engine_cluster, storage
from tagtrail.bench.latency import login, officer
from tagtrail.bench.preload import checkpoint, preload_passages, preload_reads
from tagtrail.bench.query_clients import ENDPOINTS, run_clients

_US = 1_000_000


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
    client: Literal["processes", "threads"] = "processes"
    # Requests started in the first seconds are also reported apart: each API worker meets
    # every bike and reader for the first time then (a cold cache: stitching, history counts).
    warmup_s: float = 10.0
    # Where the database comes from (``--database``: tagtrail.bench.engines) and, on
    # TimescaleDB, whether every chunk is compressed before the clients ask.
    fresh: Callable[[str], AbstractContextManager[str]] = fresh_database
    compress: bool = False


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
            "client": opts.client,
            "warmup_s": opts.warmup_s,
        },
    }
    with opts.fresh(opts.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        start_us = int((datetime.now(UTC) - timedelta(hours=opts.hours)).timestamp() * _US)
        readers = city_readers()
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
        if opts.compress:
            doc["storage"] = storage(url, compress=True)
        doc["checkpoint_seconds"] = checkpoint(url)
        form = officer(url)
        doc["machine"] = machine(url)
        with api_service(
            url, data_dir, Path(tmp), workers=opts.api_workers, topic="query", up_timeout_s=60
        ) as (port, api):
            token = login(f"http://127.0.0.1:{port}", form)
            load_before = load_avg()
            out, errors = run_clients(opts, port, token, seeded["bikes"])
            api.check()
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
            "after_warmup": {
                "requests": len(out[f"{name}_warm"]),
                **percentiles_ms(out[f"{name}_warm"]),
            },
        }
    return doc


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a query document."""
    rows = [
        ("stored reads", f"{doc['options']['stored_rows']:,}"),
        ("clients", str(doc["options"]["clients"])),
        ("API worker processes", str(doc["options"].get("api_workers", 1))),
        ("CHECKPOINT after the preload", f"{doc.get('checkpoint_seconds', 0):.1f} s"),
    ]
    for name in ENDPOINTS:
        r = doc[name]
        w = r["after_warmup"]
        rows.append(
            (
                f"{name}: p50 / p99 (n), whole run | after warm-up",
                f"{r['p50_ms']:,.1f} / {r['p99_ms']:,.1f} ms ({r['requests']:,}) | "
                f"{w['p50_ms']:,.1f} / {w['p99_ms']:,.1f} ms ({w['requests']:,})",
            )
        )
    rows.append(("load before → after", f"{doc['load_avg_before']} → {doc['load_avg_after']}"))
    return rows


def run_query_compared(opts: QueryOptions, kind: Kind) -> dict[str, Any]:
    """The same query run on the machine's plain PostgreSQL and on a private ``kind`` cluster
    (on TimescaleDB with every chunk compressed); the ratios of their p50 and p99."""
    plain = run_query(opts)
    with engine_cluster(kind) as engine:
        real = run_query(
            replace(
                opts,
                admin_url=engine.admin_url,
                fresh=engine.fresh_database,
                compress=kind == "timescaledb",
            )
        )
    doc: dict[str, Any] = {
        "benchmark": f"query latency, {kind} vs plain PostgreSQL",
        "database": kind,
        "plain": plain,
        kind: real,
    }
    for name in ENDPOINTS:
        for stat in ("p50_ms", "p99_ms"):
            doc[f"{name}_{stat}_ratio_to_plain"] = round(
                real[name][stat] / max(plain[name][stat], 1e-9), 2
            )
    return doc


def compared_report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a :func:`run_query_compared` document."""
    kind = doc["database"]
    rows = [(f"plain {label}", value) for label, value in report_rows(doc["plain"])]
    rows += [(f"{kind} {label}", value) for label, value in report_rows(doc[kind])]
    stored = doc[kind].get("storage", {})
    if "bytes_per_read_compressed" in stored:
        rows.append(
            (
                f"{kind} bytes per read: plain chunks → compressed",
                f"{stored['bytes_per_read']} → {stored['bytes_per_read_compressed']}",
            )
        )
        rows.append((f"{kind} compress_chunk, every chunk", f"{stored['compress_seconds']} s"))
    for name in ("plain", kind):
        preload = doc[name].get("preload_reads")
        if preload:
            rows.append((f"{name} preload of {preload['rows']:,} reads", f"{preload['seconds']} s"))
    for name in ENDPOINTS:
        rows.append(
            (
                f"{name}: {kind} / plain p50, p99",
                f"{doc[f'{name}_p50_ms_ratio_to_plain']}, {doc[f'{name}_p99_ms_ratio_to_plain']}",
            )
        )
    return rows
