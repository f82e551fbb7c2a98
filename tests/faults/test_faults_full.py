"""The long fault tests (``make test-faults``): one fault per test, several rounds each.

Each runs during a steady stream of simulated reads (see harness.py) and ends with the same
invariant: every read a gateway accepted is stored exactly once, every alert is raised, and
the services resumed by themselves. The spool-full and clock-jump tests check their own,
stated variants of it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from gw_helpers import PtyReader, active_frames, wait_until
from harness import (
    WATCHED_TAG,
    PgCluster,
    Stack,
    check_invariant,
    fault_stack,
    metric,
    publish_twice,
)

from reader_gateway.protocols import tagtrail_active
from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic

pytestmark = [pytest.mark.faults, pytest.mark.faults_full, pytest.mark.timeout(240)]

ROUNDS = 3


def test_broker_stopped_and_restarted(pg_cluster: PgCluster, tmp_path: Path) -> None:
    with fault_stack(pg_cluster, tmp_path) as stack:
        stack.stream.start()
        for _ in range(ROUNDS):
            stack.wait_more(300, 30, "the stream to flow")
            stack.broker.stop()
            # The reader keeps producing; its messages wait in its client for the broker.
            wait_until(lambda: stack.stream.unacked() >= 20, 10, "reads queued at the reader")
            stack.broker.start()
        stack.wait_more(300, 30, "the stream to flow after the last restart")
        check_invariant(stack)
        assert metric(stack.gateway_metrics, "tagtrail_gateway_broker_connected") == 1


def test_database_stopped_and_restarted(pg_cluster: PgCluster, tmp_path: Path) -> None:
    with fault_stack(pg_cluster, tmp_path) as stack:
        stack.stream.start()
        # Short outages, then one past the engine's longest reconnect backoff (5 s).
        for outage_reads in (400, 400, 2800):
            stack.wait_more(300, 30, "the stream to flow")
            stack.pg.stop()
            stack.wait_accepted(outage_reads, 30, "reads accepted while the database is down")
            stack.pg.start()
        stack.wait_more(300, 60, "the engine to catch up")
        check_invariant(stack)
        assert stack.engine.log().count("database connection restored") >= 3
        assert metric(stack.engine_metrics, "tagtrail_engine_db_reconnects_total") >= 3


def test_gateway_sigkilled_and_restarted(pg_cluster: PgCluster, tmp_path: Path) -> None:
    with fault_stack(pg_cluster, tmp_path) as stack:
        stack.stream.start()
        for _ in range(ROUNDS):
            stack.wait_more(300, 30, "the stream to flow")
            stack.gateway.kill()
            sent = len(stack.stream.sent)
            wait_until(
                lambda n=sent: len(stack.stream.sent) > n + 200, 10, "reads while it is dead"
            )
            stack.gateway.start()
        stack.wait_more(300, 30, "the stream to flow after the last restart")
        check_invariant(stack)
        assert not list(stack.spool_dir.glob("*.corrupt"))


def test_engine_sigkilled_and_restarted(pg_cluster: PgCluster, tmp_path: Path) -> None:
    with fault_stack(pg_cluster, tmp_path) as stack:
        stack.stream.start()
        for _ in range(ROUNDS):
            stack.wait_more(300, 30, "the stream to flow")
            stack.engine.kill()
            # The backlog builds up while it is dead: up to max_inflight batches in the broker,
            # the rest in the gateway's spool (no engine confirms them).
            stack.wait_accepted(400, 20, "reads accepted while the engine is dead")
            stack.engine.start()
        stack.wait_more(300, 30, "the stream to flow after the last restart")
        check_invariant(stack)
        # Passages are folded again from stored reads after a restart, never doubled.
        with psycopg.connect(stack.db_url) as conn:
            row = conn.execute(
                "SELECT count(*) - count(DISTINCT (tag_id, reader_id, first_at)) FROM passages"
            ).fetchone()
        assert row == (0,)


def test_same_batches_delivered_twice(pg_cluster: PgCluster, tmp_path: Path) -> None:
    with fault_stack(pg_cluster, tmp_path) as stack:
        stack.stream.start()
        stack.wait_more(200, 30, "the stream to flow")
        topic = reads_topic(1, f"{stack.prefix}/reads")
        t0_us = stack.stream.sent[0].true_at_us
        tags = [f"{0xD000000000000000 + i:016X}" for i in range(9)] + [WATCHED_TAG]
        injected = set()
        for b in range(20):
            batch = batch_from_columns(
                gateway_id="gw-replay", batch_seq=b, sent_at_us=t0_us,
                reader_ids=[f"R-DUP-{b}"] * 10, antenna=[1] * 10, tag=tags,
                rssi_dbm=[-60.0] * 10, read_at_us=[t0_us + b * 1000 + i for i in range(10)],
                seq=list(range(10)),
            )  # fmt: skip
            publish_twice(stack.broker.port, topic, encode_batch(batch))
            injected |= {(f"R-DUP-{b}", tag, t0_us + b * 1000 + i, 1) for i, tag in enumerate(tags)}
        check_invariant(stack, injected=injected)
        with psycopg.connect(stack.db_url) as conn:
            reads = conn.execute("SELECT count(*) FROM reads WHERE reader_id LIKE 'R-DUP-%'")
            assert reads.fetchone() == (200,)
            alerts = conn.execute("SELECT count(*) FROM alerts WHERE reader_id LIKE 'R-DUP-%'")
            assert alerts.fetchone() == (20,)  # one per reader, not one per delivery


def test_reader_clock_jumps(pg_cluster: PgCluster, tmp_path: Path) -> None:
    """A reader's clock jumps 10 minutes ahead, then back: reads stored once, time repaired.

    The gateway's clock estimate follows the jump within a few messages; the reads sent
    before it has carry the reader's wrong time, 600 s ahead: the engine quarantines and
    counts them (more than ``TAGTRAIL_READ_MAX_AHEAD_S``, 300 s, ahead of its clock) instead
    of storing them. The engine's watermark does not follow them past wall clock +
    ``max_future_s``.
    """
    kwargs: dict[str, object] = {"unique_tags": True}
    # The gateway refuses reads more than 300 s ahead of its clock by default; this test is
    # about what reaches the engine from a clock 600 s ahead, so the gateway lets it through.
    with fault_stack(
        pg_cluster, tmp_path, estimate_clock=True, stream_kwargs=kwargs, max_read_lead_s=900
    ) as stack:
        stack.stream.start()
        stack.wait_more(400, 30, "the stream to flow")
        jumps_us = []
        for offset_s in (600.0, 0.0):
            jumps_us.append(_now_us())
            stack.stream.clock_offset_s = offset_s
            stack.wait_more(800, 30, "reads after the jump")
        # The engine's lag (wall clock - watermark) is never below -max_future_s (60 s).
        assert metric(stack.engine_metrics, "tagtrail_engine_last_lag_seconds") > -61
        stack.stream.stop()
        wait_until(lambda: stack.stream.unacked() == 0, 30, "the reader's last PUBACKs")
        sent = [f for f in stack.stream.sent if f.key[1] != WATCHED_TAG]
        ahead = 'reason="too_far_ahead"'
        name = "tagtrail_engine_reads_quarantined_total"
        acked = stack.stream.acked_keys()
        wait_until(
            lambda: (
                len(stack.stored_keys()) + metric(stack.engine_metrics, name, ahead) >= len(acked)
            ),
            60,
            "every read stored or quarantined",
        )
        # The reads not stored are exactly those counted as too far ahead: sent in the moment
        # after the +600 s jump, before the gateway's estimate caught up, carrying +600 s.
        # (Stored times are corrected, so reads are matched by reader and tag: unique tags,
        # and a reader of its own for each watched read.)
        stored_pairs = {(k[0], k[1]) for k in stack.stored_keys()}
        refused = {k for k in acked if (k[0], k[1]) not in stored_pairs}
        assert len(refused) == metric(stack.engine_metrics, name, ahead)
        true_at = {f.key: f.true_at_us for f in stack.stream.sent}
        assert all(0 <= true_at[k] - jumps_us[0] < 5_000_000 for k in refused), "not the jump's"
        assert all(k[2] - true_at[k] > 300_000_000 for k in refused), "refused within the window"
        with psycopg.connect(stack.db_url) as conn:
            rows = conn.execute(
                "SELECT tag_id, count(*), min((extract(epoch FROM read_at) * 1e6)::bigint) "
                "FROM reads WHERE tag_id LIKE 'C%' GROUP BY tag_id"
            ).fetchall()
        stored = {tag: (n, at) for tag, n, at in rows}
        assert all(n == 1 for n, _ in stored.values()), "a read stored twice"
        acked_tags = {k[1] for k in acked - refused}
        assert acked_tags - {WATCHED_TAG} <= set(stored), "a read lost"
        # Reads sent more than 1.5 s after a jump carry the true time again (within 1 s).
        settled = [
            f for f in sent
            if all(not 0 <= f.true_at_us - j < 1_500_000 for j in jumps_us)
        ]  # fmt: skip
        wrong = [
            f for f in settled
            if f.key not in refused and abs(stored[f.key[1]][1] - f.true_at_us) > 1_000_000
        ]  # fmt: skip
        assert len(settled) > 500
        assert not wrong, f"{len(wrong)} reads kept a wrong time after the estimate settled"
        # Every watched read raised its alert (one reader each).
        watched_readers = {k[0] for k in acked - refused if k[1] == WATCHED_TAG}
        assert watched_readers <= {r for r, _ in stack.alert_keys()}
        assert "in the future" in stack.engine.log()


def _now_us() -> int:
    import time

    return time.time_ns() // 1000


def test_spool_disk_full_refuses_loudly_and_never_corrupts(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    """A 64 KiB spool budget while the broker is down: refuse, say so, keep what was accepted."""
    pty = PtyReader(tmp_path / "ttyACTIVE")
    try:
        with fault_stack(
            pg_cluster, tmp_path, serial_port=pty.link, max_spool_bytes=65536
        ) as stack:
            _spool_full(stack, pty)
    finally:
        pty.close()


def _spool_full(stack: Stack, pty: PtyReader) -> None:
    gm = stack.gateway_metrics
    wait_until(lambda: metric(gm, "tagtrail_gateway_serial_port_open") == 1, 20, "the pty")
    stack.broker.stop()
    frames = active_frames(3000, reader_id=7)
    for frame in frames:
        pty.write(frame)

    pty_reader = 'reader="AT-00000007"'

    def decided() -> float:
        accepted = metric(gm, "tagtrail_gateway_reads_total", pty_reader)
        return accepted + metric(gm, "tagtrail_gateway_spool_refused_reads_total")

    wait_until(lambda: decided() >= 3000, 30, "every read accepted or refused")
    refused = metric(gm, "tagtrail_gateway_spool_refused_reads_total")
    accepted = metric(gm, "tagtrail_gateway_reads_total", pty_reader)
    assert refused > 500, "the budget was never reached"
    assert accepted > 500
    assert "refusing reads" in stack.gateway.log(), "the refusal was not logged"
    assert metric(gm, "tagtrail_gateway_spool_bytes") <= 65536
    assert metric(gm, "tagtrail_gateway_rejects_total", 'reason="spool_full"') == refused

    stack.broker.start()  # the spool drains; what was accepted arrives, exactly once
    wait_until(lambda: metric(gm, "tagtrail_gateway_spool_unacked_batches") == 0, 60, "drain")
    sent = _keys(frames)
    stack.wait_stored(int(accepted), 60, "the accepted reads")
    stored = [k for k in stack.stored_keys() if k[0] == "AT-00000007"]
    assert len(stored) == len(set(stored)) == accepted
    assert set(stored) <= sent
    assert not list(stack.spool_dir.glob("*.corrupt"))
    assert metric(gm, "tagtrail_gateway_spool_corrupt_segments") == 0

    more = active_frames(200, start=3000, reader_id=7)  # and it accepts again
    for frame in more:
        pty.write(frame)
    wait_until(lambda: _keys(more) <= set(stack.stored_keys()), 30, "reads after the drain")


def _keys(frames: list[bytes]) -> set[tuple[str, str, int, int]]:
    out = set()
    for frame in frames:
        read = tagtrail_active.parse_frame(frame)
        at_us = round(read.read_at.timestamp() * 1e6)
        out.add((str(read.reader_id), read.tag_id, at_us, read.antenna))
    return out
