"""An engine killed under NATS with JetStream's default ack wait (30 s) while it holds
unacknowledged batches loses nothing and splits no passage (issue #19).

The other NATS tests set a 5 s ack wait (tests/realengines/engine_clusters.py); this one runs a
cluster with NATS's default. The database is stopped first, so that the engine surely holds
batches it received and cannot commit (so has not acknowledged) when it is SIGKILLed; then the
database and the engine come back while the stream goes on. Every tag stays in front of its
reader all along, so each tag's reads make one passage: whatever order the held batches and
the newer ones reach the restarted engine in, what is stored must be exactly what folding every
stored read gives (the late-read merge joins late reads to stored passages).

Measured here (nats-server 2.9.10): the held batches came back when the restarted engine
resumed its session (~4 s after the restart, the engine's start-up), not after the 30 s ack
wait the issue saw; the test checks the outcome either way and does not time it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from engine_clusters import NatsBroker, NatsCluster, missing_nats, wait_until
from harness import PgCluster, check_invariant, fault_stack

from track_engine.passages import fold_passages

pytestmark = [pytest.mark.nats, pytest.mark.faults, pytest.mark.timeout(300)]

GAP_S = 2.0  # the stack's TAGTRAIL_PASSAGE_GAP_S
KEY = ["tag_id", "reader_id", "first_at_us", "last_at_us", "read_count"]


@pytest.fixture(scope="module")
def nats_default_ack() -> Iterator[NatsCluster]:
    """A 3-node NATS cluster with JetStream's default MQTT ack wait."""
    why = missing_nats()
    if why is not None:
        pytest.skip(f"NATS cluster cannot start: {why}")
    cluster = NatsCluster(size=3, ack_wait=None)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def _passages(db_url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stored passages, the passages folding every stored read gives), as ``KEY`` rows."""
    with psycopg.connect(db_url) as conn:
        reads = pd.DataFrame(
            conn.execute(
                "SELECT tag_id, reader_id, antenna, rssi_dbm,"
                " (extract(epoch FROM read_at) * 1e6)::bigint FROM reads"
            ).fetchall(),
            columns=["tag_id", "reader_id", "antenna", "rssi_dbm", "read_at_us"],
        )
        stored = pd.DataFrame(
            conn.execute(
                "SELECT tag_id, reader_id, (extract(epoch FROM first_at) * 1e6)::bigint,"
                " (extract(epoch FROM last_at) * 1e6)::bigint, read_count FROM passages"
            ).fetchall(),
            columns=KEY,
        )
    folded = fold_passages(reads.astype({"antenna": "int64", "rssi_dbm": "float64"}), gap_s=GAP_S)
    return (
        stored.sort_values(KEY).reset_index(drop=True),
        folded[KEY].astype(stored.dtypes.to_dict()).sort_values(KEY).reset_index(drop=True),
    )


def test_batches_held_by_a_killed_engine_come_back_and_split_no_passage(
    nats_default_ack: NatsCluster, plain_pg_cluster: PgCluster, tmp_path: Path
) -> None:
    broker = NatsBroker(nats_default_ack)
    with fault_stack(plain_pg_cluster, tmp_path, broker=broker, gap_s=GAP_S) as stack:  # type: ignore[arg-type]
        stack.stream.start()
        stack.wait_more(400, 30, "the stream to flow over NATS")

        plain_pg_cluster.stop()  # the engine now receives batches it cannot commit
        stack.wait_accepted(200, 30, "reads accepted while the database is down")
        stack.engine.kill()
        held = stack.stream.acked_keys()
        plain_pg_cluster.start()
        stack.engine.start()

        waiting = held - set(stack.stored_keys())
        wait_until(
            lambda: not waiting - set(stack.stored_keys()), 60, "the held batches, redelivered"
        )
        figures = check_invariant(stack, timeout_s=90)

        # Closed passages are stored gap + 3 s after their last read (Engine.tick).
        def settled() -> bool:
            stored, folded = _passages(stack.db_url)
            return stored.equals(folded)

        try:
            wait_until(settled, 30, "the passages to match the stored reads")
        except AssertionError:
            stored, folded = _passages(stack.db_url)
            diff = stored.merge(folded, how="outer", indicator=True)
            raise AssertionError(diff[diff["_merge"] != "both"].head(10).to_string()) from None
    # 400 before the outage and 200 during it at least (how many more depends on the machine's
    # speed: 1,230 to 1,900 were seen).
    assert figures["acked"] >= 600
    assert len(waiting) > 20
