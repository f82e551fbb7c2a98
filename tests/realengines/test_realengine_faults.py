"""Faults on the real engines (issue #19), with the fault suite's stack and invariant.

The stack of tests/faults/harness.py (the gateway and the engine as real processes, a steady
stream of active-tag frames over MQTT, a watched tag every 50th read) runs on

- a 3-node NATS cluster (MQTT + JetStream), every client given all three nodes as one URL:
  the node they all use is SIGKILLed mid-stream and they fail over to the others; then the
  engine is SIGKILLed and restarted under NATS;
- a Citus coordinator and two workers: a worker is restarted mid-stream.

The invariant each time (:func:`harness.check_invariant`): every read a broker acknowledged
is stored exactly once, every read of the watched tag raised its alert, and the services
resumed by themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_clusters import CitusCluster, CitusFaultDatabase, NatsBroker, NatsCluster
from harness import PgCluster, check_invariant, fault_stack

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]


@pytest.mark.nats
def test_nats_node_and_engine_killed_mid_stream_lose_nothing(
    nats_cluster: NatsCluster, plain_pg_cluster: PgCluster, tmp_path: Path
) -> None:
    broker = NatsBroker(nats_cluster)
    with fault_stack(plain_pg_cluster, tmp_path, broker=broker) as stack:  # type: ignore[arg-type]
        stack.stream.start()
        stack.wait_more(400, 30, "the stream to flow over NATS")

        first = nats_cluster.nodes[0]  # every client's first broker: all are connected to it
        first.kill()
        stack.wait_more(600, 60, "storage after the clients failed over")

        stack.engine.kill()
        stack.wait_accepted(200, 30, "reads accepted while the engine is dead")
        stack.engine.start()
        stack.wait_more(400, 60, "the restarted engine to store")

        figures = check_invariant(stack, timeout_s=90)
    assert figures["acked"] > 1500
    assert figures["alerts"] > 10
    assert "next try" in stack.engine.log()
    assert "next try" in stack.gateway.log()


@pytest.fixture
def citus_faults(citus_cluster: CitusCluster) -> Iterator[CitusFaultDatabase]:
    databases = CitusFaultDatabase(citus_cluster)
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.mark.citus
def test_citus_worker_restarted_mid_stream_loses_nothing(
    citus_faults: CitusFaultDatabase, citus_cluster: CitusCluster, tmp_path: Path
) -> None:
    # 150 reads/s: a coordinator and two workers on this shared 2-core machine store a few
    # hundred a second (docs/scaling.md); faster, the test would time the backlog, not the fault.
    stream = {"rate_per_s": 150.0, "watch_every": 31}
    with fault_stack(citus_faults, tmp_path, stream_kwargs=stream) as stack:  # type: ignore[arg-type]
        stack.stream.start()
        stack.wait_more(300, 40, "the stream to flow into Citus")
        worker = citus_cluster.workers[0]
        worker.stop()
        stack.wait_accepted(300, 30, "reads accepted while a worker is down")
        worker.start()
        stack.wait_more(300, 60, "storage after the worker came back")
        figures = check_invariant(stack, timeout_s=90)
    assert figures["acked"] > 900
    assert figures["alerts"] > 10
    assert "database connection restored" in stack.engine.log()  # it did meet the fault
