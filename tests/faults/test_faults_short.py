"""The short fault run (part of ``make test``): every process-level fault once, in one stack.

A steady stream of active-tag frames (400 reads/s over MQTT) runs throughout; one after the
other the same batch is delivered twice, the engine is SIGKILLed and restarted, the gateway is
SIGKILLed and restarted, the broker is stopped and restarted, and the database is stopped and
restarted. Then the invariant: every read a gateway accepted is stored exactly once, every
alert is raised, and both services resumed by themselves. The long versions, one fault per
test and several rounds each, are in test_faults_full.py (``make test-faults``).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
import pytest
from harness import Key, PgCluster, check_invariant, fault_stack, metric, publish_twice

from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

DUP_TAG = "D0D0D0D0D0D0D0D0"


def _wire(**overrides: object) -> bytes:
    doc: dict[str, object] = {
        "v": 1, "gateway_id": "gw-x", "batch_seq": 1, "sent_at_us": 0, "readers": ["R1"],
        "reader": [0], "antenna": [1], "tag": ["AB"], "rssi_dbm": [-50.0],
        "read_at_us": [1_764_396_000_000_000], "seq": [1],
    }  # fmt: skip
    doc.update(overrides)
    return orjson.dumps(doc)


# Payloads a broken or hostile publisher could put on the engine's topic, each quarantined.
MALFORMED = [
    b"\x00\xff\xfe not json",
    b"[]",
    b'{"v": 2}',
    _wire(tag=["not hex"]),
    _wire(reader=[5]),
    _wire(antenna=[70000]),
    _wire(rssi_dbm=[1e999]),
    _wire(read_at_us=[0]),  # 1970: would create a partition for it
    _wire(read_at_us=[2**62]),
    _wire(readers=["R\\N"]),  # COPY text syntax in a reader id
    _wire(readers=["R\t1"]),
    _wire(readers=["R\u0000"]),
    _wire(gateway_id="g" * 1000),
    _wire(tag=[["AB"]]),
    _wire(read_at_us=1),  # a scalar column: once an IndexError that stopped the engine
]
# One good read and one from a clock in 1970 in the same batch: the good one is stored.
MIXED = _wire(
    readers=["MIX1"], reader=[0, 0], antenna=[1, 1], tag=["AB", "AC"], rssi_dbm=[-50.0, -50.0],
    read_at_us=[1_764_396_000_000_000, 0], seq=[1, 2],
)  # fmt: skip


def _dup_keys() -> set[Key]:
    return {("AT-0000D0D0", DUP_TAG, 1_764_396_000_000_000 + i, 1 + i) for i in range(3)}


def test_every_fault_once_loses_nothing(pg_cluster: PgCluster, tmp_path: Path) -> None:
    with fault_stack(pg_cluster, tmp_path) as stack:
        stack.stream.start()
        stack.wait_more(400, 20, "the stream to flow")

        dup = batch_from_columns(
            gateway_id="gw-dup", batch_seq=1, sent_at_us=0, reader_ids=["AT-0000D0D0"] * 3,
            antenna=[1, 2, 3], tag=[DUP_TAG] * 3, rssi_dbm=[-60.0] * 3,
            read_at_us=[1_764_396_000_000_000 + i for i in range(3)], seq=[1, 2, 3],
        )  # fmt: skip
        publish_twice(stack.broker.port, reads_topic(0, f"{stack.prefix}/reads"), encode_batch(dup))
        for payload in [*MALFORMED, MIXED]:
            publish_twice(stack.broker.port, reads_topic(2, f"{stack.prefix}/reads"), payload)

        stack.engine.kill()
        stack.wait_accepted(200, 20, "reads accepted while the engine is dead")
        stack.engine.start()
        stack.wait_more(400, 30, "the restarted engine to store")

        stack.gateway.kill()
        stack.gateway.start()
        stack.wait_more(400, 30, "the restarted gateway to deliver")

        stack.broker.stop()
        stack.broker.start()
        stack.wait_more(400, 30, "delivery after the broker restart")

        stack.pg.stop()
        stack.wait_accepted(400, 20, "reads accepted while the database is down")
        stack.pg.start()
        stack.wait_more(400, 30, "storage after the database restart")

        mixed_key: Key = ("MIX1", "AB", 1_764_396_000_000_000, 1)
        figures = check_invariant(stack, injected={mixed_key, *_dup_keys()})
        assert figures["acked"] > 2000
        assert figures["alerts"] > 10
        with psycopg.connect(stack.db_url) as conn:
            dup_rows = conn.execute("SELECT count(*) FROM reads WHERE tag_id = %s", (DUP_TAG,))
            assert dup_rows.fetchone() == (3,)
        assert "database connection restored" in stack.engine.log()
        assert metric(stack.engine_metrics, "tagtrail_engine_db_reconnects_total") >= 1
        with psycopg.connect(stack.db_url) as conn:
            rows = conn.execute("SELECT payload, reason FROM quarantine").fetchall()
            bogus = conn.execute("SELECT count(*) FROM reads WHERE reader_id LIKE 'R%'")
            assert bogus.fetchone() == (0,)
            mixed = conn.execute("SELECT tag_id FROM reads WHERE reader_id = 'MIX1'").fetchall()
        assert mixed == [("AB",)]
        assert sorted(bytes(p) for p, _ in rows) == sorted(2 * [*MALFORMED, MIXED])
        assert all(reason for _, reason in rows)
