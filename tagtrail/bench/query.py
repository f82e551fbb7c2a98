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

import multiprocessing
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

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
from tagtrail.bench.engines import Kind, engine_cluster, storage
from tagtrail.bench.latency import login, officer, up
from tagtrail.bench.preload import checkpoint, preload_passages, preload_reads
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
    client: Literal["processes", "threads"] = "processes"
    # Requests started in the first seconds are also reported apart: each API worker meets
    # every bike and reader for the first time then (a cold cache: stitching, history counts).
    warmup_s: float = 10.0
    # Where the database comes from (``--database``: tagtrail.bench.engines) and, on
    # TimescaleDB, whether every chunk is compressed before the clients ask.
    fresh: Callable[[str], AbstractContextManager[str]] = fresh_database
    compress: bool = False


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


def _path(name: str, bike_id: int, plate: str) -> str:
    return {
        "route": f"/api/v1/routes/{quote(plate, safe='')}",
        "last_seen": f"/api/v1/bikes/{bike_id}/last-seen",
        "next_readers": f"/api/v1/bikes/{bike_id}/next-readers",
    }[name]


def _client(
    base: str,
    token: str,
    bikes: list[tuple[int, str]],
    *,
    until: float,
    warm_at: float,
    seed: int,
    out: dict[str, list[float]],
    errors: list[str],
) -> None:
    """The ``"threads"`` client: httpx, in a thread of the benchmark's process."""
    rng = np.random.default_rng(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        turn = 0
        while time.monotonic() < until:
            bike_id, plate = bikes[int(rng.integers(len(bikes)))]
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            warm = time.monotonic() >= warm_at
            started = time.perf_counter()
            resp = client.get(_path(name, bike_id, plate), params={"reason": "benchmark"})
            elapsed = time.perf_counter() - started
            if resp.status_code == 404:
                # "not seen in that window": an answer too (timed), but counted apart
                out[f"{name}_not_found"].append(elapsed)
                continue
            if resp.status_code != 200:
                errors.append(f"{name} {resp.status_code}: {resp.text[:200]}")
                continue
            out[name].append(elapsed)
            if warm:
                out[f"{name}_warm"].append(elapsed)


class Http:
    """One keep-alive HTTP/1.1 connection: a request out, the whole answer (``Content-Length``
    or chunked) read back. Just enough client for the benchmark, so that the client's own CPU
    does not stand in for the server's."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._buf = b""

    def get(self, target: str, headers: bytes) -> tuple[int, bytes]:
        """``GET target``; the status and the body."""
        return self.request(b"GET " + target.encode() + b" HTTP/1.1\r\n" + headers)

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one whole request (request line, headers, body); the status and the body."""
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=30)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buf = b""
        self._sock.sendall(raw)
        head = self._until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            fields[key.strip().lower()] = value.strip()
        if b"content-length" in fields:
            body = self._take(int(fields[b"content-length"]))
        elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while size := int(self._until(b"\r\n").split(b";")[0], 16):
                parts.append(self._take(size))
                self._until(b"\r\n")
            self._until(b"\r\n")  # no trailers
            body = b"".join(parts)
        else:
            raise BenchError(f"an answer without a length: {head[:200]!r}")
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, body

    def _fill(self) -> None:
        if self._sock is None:
            raise RuntimeError("_fill: the connection is not open")
        data = self._sock.recv(262144)
        if not data:
            self.close()
            raise BenchError("the API closed the connection")
        self._buf += data

    def _until(self, mark: bytes) -> bytes:
        while (at := self._buf.find(mark)) < 0:
            self._fill()
        out, self._buf = self._buf[:at], self._buf[at + len(mark) :]
        return out

    def _take(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def close(self) -> None:
        """Close the socket (the next request opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _client_process(
    port: int,
    token: str,
    bikes: list[tuple[int, str]],
    start_at: float,
    until: float,
    warm_at: float,
    seed: int,
    results: Any,
) -> None:
    """The ``"processes"`` client: its own process, plain HTTP/1.1; its timings go back
    through ``results`` (a pipe end) when ``until`` (monotonic; shared by all processes on
    Linux) has passed."""
    rng = np.random.default_rng(seed)
    out = _timings()
    errors: list[str] = []
    http = Http("127.0.0.1", port)
    headers = (
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\nUser-Agent: tagtrail-bench\r\n\r\n"
    ).encode()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    turn = 0
    try:
        while time.monotonic() < until:
            bike_id, plate = bikes[int(rng.integers(len(bikes)))]
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            target = _path(name, bike_id, plate) + "?reason=benchmark"
            warm = time.monotonic() >= warm_at
            started = time.perf_counter()
            try:
                status, body = http.get(target, headers)
            except (OSError, BenchError) as exc:
                errors.append(f"{name}: {exc}")
                http.close()
                continue
            elapsed = time.perf_counter() - started
            if status == 404:
                out[f"{name}_not_found"].append(elapsed)
            elif status != 200 or not body:
                errors.append(f"{name} {status}: {body[:200]!r}")
            else:
                out[name].append(elapsed)
                if warm:
                    out[f"{name}_warm"].append(elapsed)
    finally:
        http.close()
        results.send((out, errors))
        results.close()


def _timings() -> dict[str, list[float]]:
    """Per endpoint: every answer, answers after the warm-up, and "not found" answers."""
    return {key: [] for name in ENDPOINTS for key in (name, f"{name}_warm", f"{name}_not_found")}


def _run_clients(
    opts: QueryOptions, port: int, token: str, bikes: list[tuple[int, str]]
) -> tuple[dict[str, list[float]], list[str]]:
    """Run ``opts.clients`` closed-loop clients for ``opts.seconds``; their timings."""
    out = _timings()
    errors: list[str] = []
    if opts.client == "threads":
        until = time.monotonic() + opts.seconds
        warm_at = until - opts.seconds + opts.warmup_s
        threads = [
            threading.Thread(
                target=_client,
                args=(f"http://127.0.0.1:{port}", token, bikes),
                kwargs={
                    "until": until,
                    "warm_at": warm_at,
                    "seed": i,
                    "out": out,
                    "errors": errors,
                },
            )
            for i in range(opts.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(opts.seconds + 60)
        return out, errors
    # Forked, not spawned: a client needs nothing but a socket, and forking skips importing
    # the benchmark's modules 16 times. Every client starts at the same moment.
    ctx = multiprocessing.get_context("fork")
    start_at = time.monotonic() + 0.5
    until = start_at + opts.seconds
    pipes, procs = [], []
    for i in range(opts.clients):
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_client_process,
            args=(port, token, bikes, start_at, until, start_at + opts.warmup_s, i, sender),
            daemon=True,
        )
        proc.start()
        sender.close()
        pipes.append(receiver)
        procs.append(proc)
    for receiver, proc in zip(pipes, procs, strict=True):
        if not receiver.poll(opts.seconds + 60):
            errors.append(f"client process {proc.pid} sent nothing")
            continue
        got, failed = receiver.recv()
        for key, values in got.items():
            out[key].extend(values)
        errors.extend(failed)
    for proc in procs:
        proc.join(10)
    return out, errors


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
            out, errors = _run_clients(opts, port, token, seeded["bikes"])
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


@contextmanager
def api_service(
    url: str,
    data_dir: Path,
    log_dir: Path,
    *,
    workers: int,
    topic: str,
    up_timeout_s: float,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[int, Service]]:
    """`tagtrail api --workers N` on a free loopback port over ``url`` (no broker), up and
    answering; stopped on leaving. Yields its port and the service (``check()`` it)."""
    port = free_port()
    env = service_env(url, "mqtt://127.0.0.1:1", f"tagtrail-bench/{topic}", data_dir)
    env |= extra_env or {}
    api = Service(
        "api",
        ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        log_dir=log_dir,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: up(base), timeout_s=up_timeout_s, what="the API", services=[api])
        yield port, api
    finally:
        api.stop()


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
