"""``tagtrail bench memory``: engine RSS with 1M registered tags and 100k of them active.

Set-up, on a fresh database: ``registered`` bikes, each with an owner, a frame number and a
bound active tag, loaded with COPY; ``watched`` of them stolen with an open watch (the engine
keeps the watch list in memory). One engine process starts (the gateway is left out: this is
the engine's memory), and the benchmark publishes wire batches straight to the shard topics:
``active`` tags, each passing a reader with 15 reads, all within a few seconds of event time
so that every passage is still open at the end — the engine then holds all of those reads in
memory at once. RSS is read from /proc before the reads (registry and watch list loaded) and
after every read is stored, next to the engine's own gauges of open tags and pending reads.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_target
from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic, shard_of
from tagtrail.bench.common import (
    ADMIN_URL,
    MQTT_URL,
    fresh_database,
    load_avg,
    machine,
    run_prefix,
    wait_for,
)
from tagtrail.bench.services import SHARDS, PipelineUnderTest
from tagtrail.bench.workload import (
    Workload,
    engine_rows,
    make_reads,
    reader_seq,
    tag_hex,
    tag_values,
)

_US = 1_000_000
_BATCH_READS = 2000


@dataclass(frozen=True)
class MemoryOptions:
    """What one ``tagtrail bench memory`` run does."""

    registered: int = 1_000_000
    active: int = 100_000
    watched: int = 1_000
    admin_url: str = ADMIN_URL
    mqtt_url: str = MQTT_URL


def register_tags(database_url: str, *, count: int, watched: int) -> float:
    """Register ``count`` bikes with active tags (COPY), watch ``watched``; returns seconds."""
    started = time.perf_counter()
    tags = tag_hex(tag_values(np.arange(count, dtype=np.int64)))
    ids = np.arange(1, count + 1)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        _copy(
            cur,
            "COPY owners (name, phone, id_number_hash, id_number_tail) FROM STDIN",
            (f"owner {i}\t+1000\t\\\\x{i:032x}\t{i % 10000:04d}" for i in ids),
        )
        _copy(
            cur,
            "COPY bikes (owner_id, frame_number, frame_number_key) FROM STDIN",
            (f"{i}\tF{i:09d}\tF{i:09d}" for i in ids),
        )
        _copy(cur, "COPY tags (tag_id, kind) FROM STDIN", (f"{t}\tactive" for t in tags))
        _copy(
            cur,
            "COPY tag_bindings (tag_id, bike_id) FROM STDIN",
            (f"{t}\t{i}" for t, i in zip(tags, ids, strict=True)),
        )
        cur.execute(
            """INSERT INTO watches (bike_id, kind, starts_at)
               SELECT bike_id, 'theft', now() FROM bikes ORDER BY bike_id DESC LIMIT %s""",
            (watched,),
        )
    return time.perf_counter() - started


def _copy(cur: psycopg.Cursor[Any], sql: str, lines: Any) -> None:
    buffer = io.StringIO()
    for line in lines:  # setup only, not measured: a million short lines is a second or two
        buffer.write(line + "\n")
    with cur.copy(sql) as copy:
        copy.write(buffer.getvalue())


def _publish_active(mqtt_url: str, prefix: str, *, active: int, t0_us: int) -> int:
    """Every active tag's passage as wire batches on its shard's topic; returns reads sent."""
    w = Workload(tags=active, nominal_reads_per_s=active * 15 / 5.0)
    reads = make_reads(w, first_passage=0, passages=active, t0_us=t0_us)
    rows = engine_rows(reads, reader_seq(reads["reader"].to_numpy(np.int64), {}))
    unique = rows["tag_id"].unique()
    shard_by_tag = {t: shard_of(t, SHARDS) for t in unique}
    shard = rows["tag_id"].map(shard_by_tag).to_numpy()
    target = mqtt_target(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    target.configure(client)
    client.connect(target.host, target.port, keepalive=30)
    client.loop_start()
    try:
        seq = 0
        for s in range(SHARDS):
            part = rows[shard == s]
            for i in range(0, len(part), _BATCH_READS):
                b = part.iloc[i : i + _BATCH_READS]
                batch = batch_from_columns(
                    gateway_id="bench-memory",
                    batch_seq=seq,
                    sent_at_us=0,
                    reader_ids=b["reader_id"].tolist(),
                    antenna=b["antenna"].tolist(),
                    tag=b["tag_id"].tolist(),
                    rssi_dbm=b["rssi_dbm"].tolist(),
                    read_at_us=b["read_at_us"].tolist(),
                    seq=b["reader_seq"].tolist(),
                )
                seq += 1
                client.publish(reads_topic(s, f"{prefix}/reads"), encode_batch(batch), qos=1)
    finally:
        client.loop_stop()
        client.disconnect()
    return len(rows)


def run_memory(opts: MemoryOptions) -> dict[str, Any]:
    """Run the benchmark; return the figures as one document."""
    doc: dict[str, Any] = {
        "benchmark": "engine memory",
        "options": {"registered": opts.registered, "active": opts.active, "watched": opts.watched},
    }
    now_us = time.time_ns() // 1000
    t0_us = now_us - 3600 * _US
    with fresh_database(opts.admin_url) as url:
        doc["machine"] = machine(url)
        doc["register_seconds"] = round(
            register_tags(url, count=opts.registered, watched=opts.watched), 1
        )
        prefix = run_prefix()
        with PipelineUnderTest(
            database_url=url,
            mqtt_url=opts.mqtt_url,
            prefix=prefix,
            gateways=0,
            probe_day_us=t0_us - 86_400 * _US,
        ) as pipe:
            pipe.start()
            time.sleep(2.0)
            doc["rss_idle_mib"] = round(sum(pipe.engine_rss_bytes()) / 2**20)
            base = pipe.reads_stored()
            sent = _publish_active(opts.mqtt_url, prefix, active=opts.active, t0_us=t0_us)
            rss_max = 0
            deadline = time.monotonic() + 300

            def done() -> bool:
                nonlocal rss_max
                rss_max = max(rss_max, sum(pipe.engine_rss_bytes()))
                return pipe.reads_stored() - base >= sent or time.monotonic() > deadline

            wait_for(done, timeout_s=310, what="the active reads", services=pipe.services)
            stored = pipe.reads_stored() - base
            time.sleep(1.5)  # the open-tags gauge is refreshed at most once a second …
            pipe.nudge()  # … after a micro-batch: make one (a read per shard, a day back)
            rss_max = max(rss_max, sum(pipe.engine_rss_bytes()))
            doc.update(
                {
                    "reads_sent": sent,
                    "reads_stored": stored,
                    "open_tags": int(pipe.engine_metric("tagtrail_engine_open_tags")),
                    "pending_reads": int(pipe.engine_metric("tagtrail_engine_pending_reads")),
                    "rss_active_mib": round(sum(pipe.engine_rss_bytes()) / 2**20),
                    "rss_max_mib": round(rss_max / 2**20),
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "load_avg": load_avg(),
                }
            )
    return doc


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a memory document."""
    o = doc["options"]
    return [
        ("registered / watched tags", f"{o['registered']:,} / {o['watched']:,}"),
        ("engine RSS, idle (registry loaded)", f"{doc['rss_idle_mib']:,} MiB"),
        (
            "open tags / pending reads (engine gauges)",
            f"{doc['open_tags']:,} / {doc['pending_reads']:,}",
        ),
        ("engine RSS, all active", f"{doc['rss_active_mib']:,} MiB"),
        ("engine RSS, peak", f"{doc['rss_max_mib']:,} MiB"),
        ("load", str(doc["load_avg"])),
    ]
