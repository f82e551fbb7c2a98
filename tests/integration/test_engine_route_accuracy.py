"""Simulator bytes to a stored route, scored against the simulator's ground truth.

Reader messages (real Impinj IoT JSON) go over the machine's Mosquitto through the gateway
into the engine, which stores reads and passages in PostgreSQL. The stolen bike's route is
then built from the *stored* passages on the *stored* network, as the API does, and scored
against where the bike really went.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from api.registry import bike_search as bikes
from api.tracking import store as tracking
from simulators.emit import MqttEmitter, reader_messages
from simulators.riders import trajectories
from tagtrail.bench.engine_scenario import START
from tagtrail.bench.engine_truth import prepare_truth
from tagtrail.demo import DemoOptions, load_registry, running_pipeline, simulate
from tagtrail.settings import Settings
from track_engine.db import network as queries
from track_engine.roads import RoadGraph, precompute_reader_paths
from track_engine.routes import build_route
from track_engine.scoring import score_routes

pytestmark = pytest.mark.slow


def test_stored_route_matches_ground_truth(db_url: str, mqtt_url: str, topic_prefix: str) -> None:
    options = DemoOptions(seed=11, bikes=40, hours=0.75)
    settings = Settings(database_url=db_url, mqtt_url=mqtt_url, topic_prefix=topic_prefix)
    # The morning peak (07:00 local), so that the simulated city is busy.
    sim = simulate(options, start=START)
    now = START + timedelta(hours=options.hours)
    with psycopg.connect(db_url) as conn:
        load_registry(conn, sim, source="generated:test", id_hash_key=b"k" * 32)
    # A replay of a fixed morning: the gateway must accept reads that old.
    replayed_s = (datetime.now(UTC) - START).total_seconds() + options.hours * 3600
    with running_pipeline(
        settings, database_url=db_url, mqtt_url=mqtt_url, simulated_s=replayed_s
    ) as pipe:
        emitter = MqttEmitter(
            mqtt_url, topic_prefix=topic_prefix, client_id=f"sim-{uuid.uuid4().hex[:8]}"
        )
        try:
            emitter.replay(
                reader_messages(sim.reads, {r.reader_id: r.protocol for r in sim.readers}),
                stop=pipe.stop,
                backlog=lambda: emitter.published - pipe.gateway.messages_acked,
            )
            assert emitter.drain(60)
        finally:
            emitter.close()
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while pipe.engine.counters.reads_received < len(sim.reads) * 0.95 or not (
            pipe.gateway.idle() and pipe.engine.counters.reads_received >= pipe.gateway.reads_out
        ):
            assert datetime.now(UTC) < deadline, "the pipeline did not drain"
            pipe.stop.wait(0.1)
        pipe.stop.set()
        for thread in pipe.threads:
            thread.join(10)
        pipe.engine.flush()

    bike = sim.stolen_bike
    with psycopg.connect(db_url) as conn:
        found = bikes.find_bike(conn, plate=bike.plate)
        assert found is not None
        stored = tracking.bike_passages(
            conn, bike_id=found.bike_id, since=sim.start, until=now + timedelta(minutes=5)
        )
        arrays = queries.load_network(conn)
    assert arrays is not None
    assert len(stored) >= 3
    graph = RoadGraph.from_arrays(
        node_lonlat=arrays.node_lonlat, node_xy_m=arrays.node_xy_m, edge_src=arrays.edge_src,
        edge_dst=arrays.edge_dst, edge_length_m=arrays.edge_length_m,
    )  # fmt: skip
    readers = arrays.readers
    reader_nodes = dict(zip(readers["reader_id"], readers["node_id"].astype(int), strict=True))
    paths = precompute_reader_paths(
        graph,
        reader_nodes,
        miss_rate=dict(zip(readers["reader_id"], readers["miss_rate"], strict=True)),
    )
    route = build_route(stored, graph, reader_nodes, paths)
    assert len(route.points) > 60

    traj = trajectories(sim.city, sim.population, seed=options.seed)
    truth = prepare_truth(sim.city, sim.readers, sim.population, traj, sim.truth)
    mine = truth.spans["tag_id"] == bike.tag_id
    assert mine.any()
    scores = score_routes(
        {bike.tag_id: route},
        graph=graph,
        estimated_passages=stored,
        truth_passages=truth.heard,
        spans=truth.spans[mine],
        true_edges=truth.edges[truth.edges["trip_id"].isin(truth.spans[mine]["trip_id"])],
        true_positions=truth.positions[truth.positions["tag_id"] == bike.tag_id],
    )
    # The stolen bike's whole observed route: road recovered, passage times to the second.
    assert scores.recall >= 0.8, scores
    assert scores.precision >= 0.8, scores
    assert scores.time_error_median_s <= 1.0, scores
    assert scores.position_error_median_m <= 40.0, scores
    assert np.isfinite(scores.position_error_p95_m)
