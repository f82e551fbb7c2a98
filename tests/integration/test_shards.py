"""Scale-out proof: two engine workers owning half the shards each give the same results as one.

One simulated morning (the demo's generated city, its riders and one theft whose bike is
watched) is turned into the wire batches a gateway publishes: reads clock-corrected, cut into
event-time slices, each slice split by the gateway's shard function
(:func:`reader_gateway.wire.shard_of`) into one batch per shard topic. The same sequence of
batches goes over the machine's Mosquitto, under a topic prefix of each run's own, into

(a) one :class:`EngineService` owning all four shards, and
(b) two :class:`EngineService` workers owning shards {0, 1} and {2, 3},

each storing into a fresh database with the real schema and the same registry. Then the
stored reads and passages are compared row for row, the alerts raised for the stolen bike's
watch are compared, and every bike's route is built by the API's own route service
(:func:`api.tracking.service.route_for_plate`, stitched on the stored road network) in both
databases and compared as GeoJSON.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from testsupport import create_database, drop_database

from api.network.service import NetworkCache
from api.tracking.service import RouteRequest, route_for_plate
from reader_gateway.brokers import mqtt_target
from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic, shard_of
from tagtrail.bench.engine_scenario import START
from tagtrail.demo import DemoOptions, SimulatedCity, load_registry, simulate
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.db.migrate import migrate
from track_engine.errors import NotFoundError

pytestmark = pytest.mark.slow

SHARDS = 4
GAP_S = 10.0
SLICE_US = 1_000_000  # event time per published slice (one batch per shard and slice)
MAX_BACKLOG_READS = 4_000  # published but not yet received: stays far below the broker's queue
ID_KEY = b"k" * 32


def _wire_messages(sim: SimulatedCity) -> list[tuple[int, bytes, int]]:
    """What a gateway would publish for ``sim``: (shard, payload, reads) in publish order.

    Read times are corrected by each reader's clock offset (as the gateway normalizes them),
    sorted, cut into 1 s slices of event time; each slice becomes one batch per shard.
    """
    reads = sim.reads
    offset_us = {r.reader_id: round(r.clock_offset_s * 1e6) for r in sim.readers}
    reader = reads["reader_id"].astype(str).to_numpy(dtype=object)
    tag = reads["tag_id"].astype(str).to_numpy(dtype=object)
    read_at = reads["read_at_us"].to_numpy(np.int64) - np.array(
        [offset_us[r] for r in reader], dtype=np.int64
    )
    order = np.argsort(read_at, kind="stable")
    reader, tag, read_at = reader[order], tag[order], read_at[order]
    antenna = reads["antenna"].to_numpy(np.int64)[order]
    rssi = reads["rssi_dbm"].to_numpy(np.float64)[order]
    seq = reads.assign(r=reads["reader_id"].astype(str)).groupby("r").cumcount().to_numpy()[order]
    shard = np.array([shard_of(t, SHARDS) for t in tag], dtype=np.int64)
    slice_no = (read_at - read_at[0]) // SLICE_US
    messages: list[tuple[int, bytes, int]] = []
    bounds = np.flatnonzero(np.r_[True, slice_no[1:] != slice_no[:-1], True])
    for lo, hi in itertools.pairwise(bounds.tolist()):
        for s in range(SHARDS):
            idx = lo + np.flatnonzero(shard[lo:hi] == s)
            if not len(idx):
                continue
            batch = batch_from_columns(
                gateway_id="gw-shards",
                batch_seq=len(messages),
                sent_at_us=int(read_at[idx[-1]]),
                reader_ids=reader[idx].tolist(),
                antenna=antenna[idx].tolist(),
                tag=tag[idx].tolist(),
                rssi_dbm=rssi[idx].tolist(),
                read_at_us=read_at[idx].tolist(),
                seq=seq[idx].tolist(),
            )
            messages.append((s, encode_batch(batch), len(idx)))
    return messages


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def _database(admin_url: str, sim: SimulatedCity) -> Iterator[str]:
    name, url = create_database(admin_url)
    try:
        migrate(url)
        with psycopg.connect(url) as conn:
            load_registry(conn, sim, source="generated:shards", id_hash_key=ID_KEY)
        yield url
    finally:
        drop_database(admin_url, name)


def _run(
    db_url: str, mqtt_url: str, messages: list[tuple[int, bytes, int]], owners: list[range]
) -> list[int]:
    """Publish ``messages`` to engine workers owning ``owners`` shards each; flush at the end.

    Returns the reads each worker received."""
    prefix = f"tagtrail-test-{uuid.uuid4().hex[:12]}/v1"
    services = [
        EngineService(
            EngineConfig(
                database_url=db_url,
                mqtt_url=mqtt_url,
                topic_prefix=prefix,
                shards=tuple(shards),
                client_id=f"engine-{i}-{prefix}",
                gap_s=GAP_S,
                persistent_session=False,
                read_max_age_s=None,  # a simulated day from 2025, older than the default window
            )
        )
        for i, shards in enumerate(owners)
    ]
    stop = threading.Event()
    workers = [threading.Thread(target=s.run, args=(stop,)) for s in services]
    target = mqtt_target(mqtt_url)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{prefix}")
    target.configure(publisher)
    publisher.max_inflight_messages_set(100)
    try:
        for service in services:
            service.start()
        _wait(lambda: all(s.connected.is_set() for s in services), 15, "subscriptions")
        for worker in workers:
            worker.start()
        publisher.connect(target.host, target.port)
        publisher.loop_start()

        def received() -> int:
            return sum(s.counters.reads_received for s in services)

        sent = 0
        for shard, payload, n in messages:
            backlog = sent - MAX_BACKLOG_READS
            _wait(lambda: received() > backlog, 30, "the engines to keep up")  # noqa: B023
            publisher.publish(reads_topic(shard, f"{prefix}/reads"), payload, qos=1)
            sent += n
        _wait(lambda: received() == sent, 60, "every read")
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)
        publisher.loop_stop()
        publisher.disconnect()
    for service in services:
        service.flush()
        service.close()
    return [s.counters.reads_received for s in services]


def _table(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


def _routes(db_url: str, sim: SimulatedCity) -> dict[str, Any]:
    """Every bike's route over the simulated window, built by the API's route service."""
    network = NetworkCache()
    until = sim.start + timedelta(hours=2)
    out: dict[str, Any] = {}
    with psycopg.connect(db_url) as conn:
        for bike in sim.population.bikes:
            try:
                out[bike.plate] = route_for_plate(
                    conn,
                    network,
                    RouteRequest(
                        plate=bike.plate,
                        since=sim.start - timedelta(hours=1),
                        until=until,
                        reason="shard equivalence",
                        case_number=None,
                        actor="test",
                    ),
                )
            except NotFoundError:
                out[bike.plate] = None
            conn.commit()
    return out


def test_two_engine_workers_store_what_one_stores(pg_admin_url: str, mqtt_url: str) -> None:
    sim = simulate(DemoOptions(seed=11, bikes=150, hours=1.0), start=START)
    messages = _wire_messages(sim)
    # The simulator repeats a few natural keys (tag, time, reader, antenna): stored once.
    reads = len(sim.reads.drop_duplicates(["tag_id", "read_at_us", "reader_id", "antenna"]))
    assert {s for s, _, _ in messages} == set(range(SHARDS))
    results: list[dict[str, Any]] = []
    for owners in ([range(0, 4)], [range(0, 2), range(2, 4)]):
        with _database(pg_admin_url, sim) as url:
            per_worker = _run(url, mqtt_url, messages, owners)
            assert len(per_worker) == len(owners)
            assert all(n > 0 for n in per_worker), per_worker  # every worker had its share
            results.append(
                {
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
            )
    one, two = results
    assert len(one["reads"]) == reads
    assert one["reads"] == two["reads"]
    assert len(one["passages"]) > 200
    assert one["passages"] == two["passages"]
    stolen = sim.stolen_bike.tag_id
    assert one["alerts"], "the stolen bike was never read"
    assert {a[2] for a in one["alerts"]} == {stolen}
    assert one["alerts"] == two["alerts"]
    drawn = [p for p, r in one["routes"].items() if r is not None]
    assert len(drawn) > 50
    assert one["routes"] == two["routes"]
