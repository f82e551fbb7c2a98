"""``tagtrail bench ingest``: sustained reads/s end to end, against the raw COPY of the same rows.

Readers: TagTrail active-tag frames on pseudo-terminals, read by the gateway's serial
transport. That is the input that can reach 100k reads/s here: a 32-byte binary frame decodes
at ~250k reads/s on one core (JSON formats at about half that, see ``tagtrail bench
gateway``), a serial port needs no per-message acknowledgement round trip with the broker
(raw reader JSON over MQTT does, QoS 1, manual ack after spooling), and the frames carry
the reader's id and time, so event time is the workload's and passages fold as in a city.

A phase: fresh database (real schema), engines then gateway(s) as their own processes, the
ptys fed as fast as they drain for ``minutes`` (with ``feed_rate``: exactly ``feed_rate`` ×
``minutes`` reads at that pace, however long the pipeline takes to accept them); the rate is
the engines' count of reads stored (after commit) from the end of a warm-up to the arrival
of the last row. Then, in the same database with the services stopped, the same reads
(1 ms later, so they are new keys in the same partition) are COPYed straight into
``reads``, in the engine's format (binary COPY), one transaction per ~750k rows: the
machine's limit for storing these rows, sustained as long as the pipeline's, checkpoints
included (``copy_rows`` copies only the first that many: a burst, which a checkpoint seldom
meets). With ``stored_rows`` a second phase runs on a second fresh database whose partition
for the workload's day already holds that many reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from tagtrail.bench.common import (
    ADMIN_URL,
    MQTT_URL,
    BenchError,
    fresh_database,
    load_avg,
    machine,
    run_prefix,
)
from tagtrail.bench.engines import Kind, engine_cluster, storage
from tagtrail.bench.preload import preload_reads
from tagtrail.bench.services import PipelineUnderTest
from tagtrail.bench.workload import Workload, engine_rows, frames, make_reads, reader_seq
from track_engine.db.writer import COPY_READS, PartitionKeeper, ReadRows, read_copy_data

_US = 1_000_000
_CHUNK_PASSAGES = 50_000
_DRAIN_STALL_S = 20.0  # no new rows for this long: what is missing is not coming
_DRAIN_MAX_S = 120.0  # and never wait longer than this (or the feeding time) for the rest


@dataclass(frozen=True)
class IngestOptions:
    """What one ``tagtrail bench ingest`` run does."""

    minutes: float = 1.0
    stored_rows: int = 0
    gateways: int = 1
    engines: int = 1
    ptys_per_gateway: int = 4
    max_reads_per_s: float = 150_000.0
    feed_rate: float | None = None  # reads/s through the ptys; None: as fast as they drain
    copy_rows: int | None = None  # None: every read of the run (the same rows)
    warmup_s: float = 10.0
    admin_url: str = ADMIN_URL
    mqtt_url: str = MQTT_URL
    workload: Workload = field(default_factory=Workload)
    # Where each phase's database comes from: the machine's PostgreSQL, or a real-engine
    # cluster's (tagtrail.bench.engines.Engine.fresh_database, ``--database``).
    fresh: Callable[[str], AbstractContextManager[str]] = fresh_database
    measure_storage: bool = False  # bytes per read (and compressed, on TimescaleDB)


@dataclass
class CopyReference:
    """The raw COPY reference's rows, encoded ahead (binary COPY, one stream per chunk), so
    that its timing is PostgreSQL's alone."""

    chunks: list[bytes] = field(default_factory=list)
    rows: int = 0
    first_us: int = 0
    last_us: int = 0

    def add(self, rows: pd.DataFrame) -> None:
        """Encode ``rows`` (``engine_rows``' columns), shifted 1 ms: new keys, same partition."""
        read_at = rows["read_at_us"].to_numpy(np.int64) + 1000
        rows = rows.assign(read_at_us=read_at)
        self.chunks.append(read_copy_data(ReadRows.from_frame(rows, gateway_id="bench-copy")))
        first, last = int(read_at.min()), int(read_at.max())
        self.first_us = min(self.first_us, first) if self.rows else first
        self.last_us = max(self.last_us, last)
        self.rows += len(rows)


def prepare_streams(
    w: Workload, *, t0_us: int, reads_total: int, n_ptys: int, copy_rows: int | None = 0
) -> tuple[list[bytes], CopyReference, int]:
    """Per-pty frame streams (a reader always on the same pty), the raw COPY reference of
    the first ``copy_rows`` reads (None: all of them; 0: none), and how many reads the streams
    hold."""
    passages = max(1, reads_total // w.reads_per_passage)
    parts: list[list[bytes]] = [[] for _ in range(n_ptys)]
    reference = CopyReference()
    limit = passages * w.reads_per_passage if copy_rows is None else copy_rows
    seq_state: dict[int, int] = {}
    for first in range(0, passages, _CHUNK_PASSAGES):
        reads = make_reads(
            w, first_passage=first, passages=min(_CHUNK_PASSAGES, passages - first), t0_us=t0_us
        )
        seq = reader_seq(reads["reader"].to_numpy(np.int64), seq_state)
        pty = reads["reader"].to_numpy(np.int64) % n_ptys
        for i in range(n_ptys):
            mask = pty == i
            parts[i].append(frames(reads[mask].reset_index(drop=True), seq[mask]))
        take = min(len(reads), limit - reference.rows)
        if take > 0:
            reference.add(engine_rows(reads.iloc[:take], seq[:take]))
    total = passages * w.reads_per_passage
    return [b"".join(p) for p in parts], reference, total


def _copy_limit(database_url: str, reference: CopyReference) -> dict[str, Any]:
    """COPY the reference's chunks straight into ``reads``, a transaction each; the rate."""
    with psycopg.connect(database_url) as conn:
        bounds = np.asarray([reference.first_us, reference.last_us], dtype=np.int64)
        PartitionKeeper().ensure(conn, "reads", bounds)
        conn.commit()
        started = time.perf_counter()
        for chunk in reference.chunks:
            with conn.cursor() as cur, cur.copy(COPY_READS) as copy:
                copy.write(chunk)
            conn.commit()
        seconds = time.perf_counter() - started
    return {
        "copy_rows": reference.rows,
        "copy_seconds": round(seconds, 3),
        "copy_reads_per_s": round(reference.rows / seconds),
    }


@dataclass
class _Progress:
    """Rows stored over time in one phase: ``timeline`` is (seconds, rows) samples."""

    timeline: list[tuple[float, int]] = field(default_factory=list)
    fed: int = 0
    acked: int = 0  # reads the broker acknowledged to the gateways by the end
    fed_end_s: float = 0.0
    rss_max: int = 0

    @property
    def stored(self) -> int:
        """Rows stored by the end."""
        return self.timeline[-1][1] if self.timeline else 0

    def rate(self, warmup_s: float) -> float:
        """Rows/s from the first sample after the warm-up to the last row's arrival."""
        last_t, last_n = self.timeline[-1]
        first = next(((t, n) for t, n in self.timeline if n < last_n), None)
        warm = next(((t, n) for t, n in self.timeline if t >= warmup_s and n < last_n), first)
        if warm is None or last_t <= warm[0]:
            raise BenchError("too few samples for a rate: give more --minutes or less --warmup-s")
        return (last_n - warm[1]) / (last_t - warm[0])


def _follow(
    pipe: PipelineUnderTest, feeder: threading.Thread, *, started: float, seconds: float
) -> _Progress:
    """Sample stored rows while feeding and while the backlog drains (bounded both ways)."""
    progress = _Progress()
    base = pipe.reads_stored()
    last_change = time.monotonic()
    drain_deadline = 0.0  # set when the feed ends, which at a feed rate has no fixed time
    while True:
        time.sleep(0.5)
        for service in pipe.services:
            service.check()
        now = time.monotonic()
        stored = pipe.reads_stored() - base
        if not progress.timeline or stored != progress.timeline[-1][1]:
            progress.timeline.append((round(now - started, 2), stored))
            last_change = now
        progress.rss_max = max(progress.rss_max, *pipe.engine_rss_bytes())
        if feeder.is_alive():
            continue
        if not progress.fed:
            progress.fed, progress.fed_end_s = pipe.feeder.frames_written, now - started
            drain_deadline = now + max(_DRAIN_MAX_S, seconds)
        if stored >= progress.fed or now - last_change > _DRAIN_STALL_S or now > drain_deadline:
            progress.acked = pipe.gateway_reads_acked()
            return progress


def feed_plan(feed_rate: float | None, deadline: float) -> dict[str, Any]:
    """How :meth:`PtyFeeder.run` feeds a phase. At a ``feed_rate``: every prepared read,
    paced, however long the pipeline takes to accept them (a fixed count; a timer ending
    when the pace writes its last frame cut the tail off whenever the feeder ran a little
    late), given up only if the ptys accept nothing for ``_DRAIN_STALL_S``. Without one: as
    fast as they drain until ``deadline``, the reads fed being what fitted in."""
    if feed_rate is not None:
        return {"frames_per_s": feed_rate, "stall_s": _DRAIN_STALL_S}
    return {"deadline": deadline}


def _phase(opts: IngestOptions, database_url: str, t0_us: int, label: str) -> dict[str, Any]:
    seconds = opts.minutes * 60.0
    n_ptys = opts.gateways * opts.ptys_per_gateway
    streams, reference, total = prepare_streams(
        opts.workload,
        t0_us=t0_us,
        reads_total=int((opts.feed_rate or opts.max_reads_per_s) * seconds),
        n_ptys=n_ptys,
        copy_rows=opts.copy_rows,
    )
    load_before = load_avg()
    with PipelineUnderTest(
        database_url=database_url,
        mqtt_url=opts.mqtt_url,
        prefix=run_prefix(),
        gateways=opts.gateways,
        engines=opts.engines,
        ptys_per_gateway=opts.ptys_per_gateway,
        probe_day_us=t0_us - 86_400 * _US,
    ) as pipe:
        pipe.start()
        started = time.monotonic()
        feed = feed_plan(opts.feed_rate, started + seconds)
        feeder = threading.Thread(target=pipe.feeder.run, args=(streams,), kwargs=feed)
        feeder.start()
        progress = _follow(pipe, feeder, started=started, seconds=seconds)
    rate = progress.rate(opts.warmup_s)
    fed, last = progress.fed, progress.stored
    result: dict[str, Any] = {
        "phase": label,
        "reads_per_s": round(rate),
        "reads_fed": fed,
        "reads_stored": last,
        "reads_missing": fed - last,
        # Of the missing: still in a gateway's spool (not acknowledged by the broker), and
        # acknowledged by the broker but never delivered to an engine (dropped by the broker).
        "reads_unsent": fed - progress.acked,
        "reads_lost_in_broker": max(0, progress.acked - last),
        "generated": total,
        "feed_rate": opts.feed_rate,
        "feed_seconds": round(progress.fed_end_s, 1),
        "last_row_seconds": round(progress.timeline[-1][0], 1),
        # How long the pipeline needed after the feed stopped: a few seconds when it kept
        # up with the feed, the backlog's worth when it did not.
        "drain_seconds": round(progress.timeline[-1][0] - progress.fed_end_s, 1),
        "engine_rss_max_mib": round(progress.rss_max / 2**20),
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
        "timeline": progress.timeline,
    }
    result.update(_copy_limit(database_url, reference))
    result["ratio"] = round(result["reads_per_s"] / result["copy_reads_per_s"], 3)
    return result


def run_ingest(opts: IngestOptions) -> dict[str, Any]:
    """Run the empty phase (and the stored-rows phase); return the figures as one document."""
    now_us = time.time_ns() // 1000
    t0_us = now_us - 2 * 3600 * _US
    t0_us -= t0_us % 1000
    doc: dict[str, Any] = {
        "benchmark": "ingest end to end",
        "options": {
            "minutes": opts.minutes,
            "stored_rows": opts.stored_rows,
            "gateways": opts.gateways,
            "engines": opts.engines,
            "ptys_per_gateway": opts.ptys_per_gateway,
            "max_reads_per_s": opts.max_reads_per_s,
            "feed_rate": opts.feed_rate,
            "copy_rows": opts.copy_rows,
            "tags": opts.workload.tags,
            "readers": opts.workload.readers,
            "reads_per_passage": opts.workload.reads_per_passage,
        },
    }
    with opts.fresh(opts.admin_url) as url:
        doc["machine"] = machine(url)
        empty = _phase(opts, url, t0_us, "empty")
        if opts.measure_storage:
            empty["storage"] = storage(url, compress=True)
    doc["phases"] = [empty]
    doc["reads_per_s"] = empty["reads_per_s"]
    doc["copy_reads_per_s"] = empty["copy_reads_per_s"]
    doc["ratio"] = empty["ratio"]
    if opts.stored_rows > 0:
        with opts.fresh(opts.admin_url) as url:
            loaded = preload_reads(
                url, rows=opts.stored_rows, before_us=t0_us - 600 * _US, tags=opts.workload.tags
            )
            stored = _phase(opts, url, t0_us, "stored")
            stored["preload"] = loaded
        doc["phases"].append(stored)
        doc["stored_rows"] = loaded["rows"]
        doc["reads_per_s_stored"] = stored["reads_per_s"]
        doc["stored_vs_empty"] = round(stored["reads_per_s"] / max(1, empty["reads_per_s"]), 3)
    return doc


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of an ingest document."""
    rows: list[tuple[str, str]] = []
    for p in doc["phases"]:
        tag = p["phase"]
        rows += [
            (f"{tag}: pipeline reads/s", f"{p['reads_per_s']:,}"),
            (f"{tag}: raw COPY reads/s", f"{p['copy_reads_per_s']:,}"),
            (f"{tag}: ratio", f"{p['ratio']:.2f}"),
            (
                f"{tag}: fed / stored / missing",
                f"{p['reads_fed']:,} / {p['reads_stored']:,} / {p['reads_missing']:,}",
            ),
            (
                f"{tag}: fed for / drained in",
                f"{p['feed_seconds']} s / {p['drain_seconds']} s",
            ),
            (
                f"{tag}: missing = unsent + lost in broker",
                f"{p['reads_unsent']:,} + {p['reads_lost_in_broker']:,}",
            ),
            (f"{tag}: engine RSS max", f"{p['engine_rss_max_mib']:,} MiB"),
            (f"{tag}: load before → after", f"{p['load_avg_before']} → {p['load_avg_after']}"),
        ]
    if "stored_vs_empty" in doc:
        rows.append((f"with {doc['stored_rows']:,} stored vs empty", f"{doc['stored_vs_empty']}"))
    return rows


def run_ingest_compared(opts: IngestOptions, kind: Kind) -> dict[str, Any]:
    """The same ingest run on the machine's plain PostgreSQL and on a private ``kind``
    cluster (TimescaleDB, or Citus with two workers), one after the other; their ratio, and
    bytes per stored read on each (and compressed, on TimescaleDB)."""
    plain = run_ingest(replace(opts, measure_storage=True))
    with engine_cluster(kind) as engine:
        real = run_ingest(
            replace(
                opts, admin_url=engine.admin_url, fresh=engine.fresh_database, measure_storage=True
            )
        )
    return {
        "benchmark": f"ingest end to end, {kind} vs plain PostgreSQL",
        "database": kind,
        "plain": plain,
        kind: real,
        "ratio_to_plain": round(real["reads_per_s"] / max(1, plain["reads_per_s"]), 3),
        "copy_ratio_to_plain": round(
            real["copy_reads_per_s"] / max(1, plain["copy_reads_per_s"]), 3
        ),
    }


def compared_report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a :func:`run_ingest_compared` document."""
    kind = doc["database"]
    rows: list[tuple[str, str]] = []
    for name in ("plain", kind):
        rows += [(f"{name} {label}", value) for label, value in report_rows(doc[name])]
        stored = doc[name]["phases"][0].get("storage", {})
        if "bytes_per_read" in stored:
            rows.append((f"{name} bytes per stored read", f"{stored['bytes_per_read']}"))
        if "bytes_per_read_compressed" in stored:
            rows.append(
                (f"{name} bytes per read, compressed", f"{stored['bytes_per_read_compressed']}")
            )
    rows.append((f"{kind} / plain pipeline reads/s", f"{doc['ratio_to_plain']:.2f}"))
    rows.append((f"{kind} / plain raw COPY reads/s", f"{doc['copy_ratio_to_plain']:.2f}"))
    return rows
