"""The broker crashes (SIGKILL) mid-stream with the shipped configuration: nothing accepted is lost.

Mosquitto acknowledges a QoS 1 batch (PUBACK) as soon as the batch is in its memory, and writes
its persistence file only every ``autosave_interval``; a SIGKILL loses whatever it held only in
memory. The broker here runs deploy/mosquitto/mosquitto.conf as shipped (site settings aside,
see :class:`harness.ShippedBroker`). A serial reader (a pty) feeds the gateway at 400 reads/s,
every 97th read a read of a watched tag at a reader of its own; the engine is paused
(SIGSTOP: a slow database, a long fold) so that the broker holds a backlog of acknowledged
batches for it, the broker is SIGKILLed and restarted, the engine resumed. The invariant: every
read the gateway accepted (spooled) is stored exactly once, and every watched read raised its
alert. Without the engines' stored confirmations the gateway deleted each batch at its PUBACK,
and the backlog died with the broker.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gw_helpers import PtyReader, wait_until
from harness import (
    WATCHED_TAG,
    Key,
    PgCluster,
    ShippedBroker,
    Stack,
    check_invariant,
    fault_stack,
    metric,
)

from reader_gateway.protocols import tagtrail_active

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

READER = 7  # the pty reader's own id: its reads are stored as AT-00000007


class PtyStream:
    """A serial active-tag reader writing frames to a pty at a steady rate, keeping their keys."""

    def __init__(self, pty: PtyReader, *, rate_per_s: float = 400.0, watch_every: int = 97):
        self.pty = pty
        self.rate_per_s = rate_per_s
        self.watch_every = watch_every
        self.keys: list[Key] = []
        self._seq = 0
        self._t0 = datetime.now(UTC)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-stream", daemon=True)

    def _frames(self, n: int) -> bytes:
        data = bytearray()
        for _ in range(n):
            self._seq += 1
            i = self._seq
            watched = i % self.watch_every == 0
            frame = tagtrail_active.encode_frame(
                reader_id=2000 + i // self.watch_every if watched else READER,
                reader_seq=i,
                # 1 ms apart (the frame's resolution): every read has a key of its own
                read_at=self._t0 + timedelta(milliseconds=i),
                tag_id=WATCHED_TAG if watched else f"{0xC100000000000000 + i % 500:016X}",
                rssi_dbm=-55 - i % 30,
                antenna=1 + i % 4,
            )
            read = tagtrail_active.parse_frame(frame)
            at_us = round(read.read_at.timestamp() * 1e6)
            self.keys.append((str(read.reader_id), read.tag_id, at_us, read.antenna))
            data += frame
        return bytes(data)

    def _run(self) -> None:
        per_write = 10
        interval = per_write / self.rate_per_s
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.pty.write(self._frames(per_write))
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))  # pacing, not sync

    def start(self) -> None:
        """Write frames on a thread of its own until :meth:`stop`."""
        self._thread.start()

    def stop(self) -> None:
        """Stop writing."""
        self._stop.set()
        self._thread.join(10)


def _accepted(stack: Stack) -> float:
    """Reads the gateway accepted (spooled) from the pty stream's readers."""
    name = "tagtrail_gateway_reads_total"
    probe = tagtrail_active.format_reader_id(0xFFFF)
    return metric(stack.gateway_metrics, name) - metric(stack.gateway_metrics, name, probe)


def _acked(stack: Stack) -> float:
    return metric(stack.gateway_metrics, "tagtrail_gateway_reads_acked_total")


def _crash_rounds(stack: Stack, feed: PtyStream, rounds: int) -> dict[str, int]:
    """Pause the engine, let the broker acknowledge a backlog, SIGKILL the broker; repeat.

    Returns the figures; raises with the loss if an accepted read is missing.
    """
    assert isinstance(stack.broker, ShippedBroker)
    engine = stack.engine.proc
    assert engine is not None
    feed.start()
    for _ in range(rounds):
        stack.wait_more(400, 30, "the stream to be stored")
        engine.send_signal(signal.SIGSTOP)
        try:
            acked = _acked(stack)
            wait_until(
                lambda a=acked: _acked(stack) >= a + 800, 20, "a backlog acknowledged by the broker"
            )
            stack.broker.kill()
            stack.broker.start()
        finally:
            engine.send_signal(signal.SIGCONT)
        stack.wait_more(400, 60, "storage after the broker's crash")
    feed.stop()
    written = len(feed.keys)
    wait_until(lambda: _accepted(stack) >= written, 20, "the gateway to accept every read")
    sent = set(feed.keys)
    deadline = time.monotonic() + 60
    while True:
        stored = [k for k in stack.stored_keys() if k[0] != "AT-0000FFFF"]
        missing = sent - set(stored)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling the database for the condition itself
    assert not missing, (
        f"{len(missing)} of {written} accepted reads lost "
        f"({len([k for k in missing if k[1] == WATCHED_TAG])} of "
        f"{len([k for k in sent if k[1] == WATCHED_TAG])} watched)\n"
        f"gateway log:\n{stack.gateway.log()[-3000:]}"
    )
    assert len(stored) == len(set(stored)), "a read is stored more than once"
    assert set(stored) <= sent, "a read was stored that the reader never sent"
    watched = {(k[0], k[2]) for k in sent if k[1] == WATCHED_TAG}
    wait_until(lambda: len(stack.alert_keys()) >= len(watched), 20, "every alert")
    alerts = stack.alert_keys()
    assert len(alerts) == len(set(alerts)), "an alert was raised twice"
    assert watched == set(alerts)
    assert stack.engine.alive(), stack.engine.log()
    assert stack.gateway.alive(), stack.gateway.log()
    return {"accepted": written, "stored": len(stored), "alerts": len(alerts)}


def test_broker_kill9_loses_no_acknowledged_read(pg_cluster: PgCluster, tmp_path: Path) -> None:
    pty = PtyReader(tmp_path / "ttyACTIVE")
    broker = ShippedBroker(tmp_path / "broker")
    try:
        with fault_stack(pg_cluster, tmp_path, serial_port=pty.link, broker=broker) as stack:
            figures = _crash_rounds(stack, PtyStream(pty), rounds=1)
            assert figures["alerts"] >= 10
            assert metric(stack.gateway_metrics, "tagtrail_gateway_batches_republished_total") > 0
    finally:
        pty.close()


@pytest.mark.faults_full
def test_broker_kill9_three_times_loses_nothing(pg_cluster: PgCluster, tmp_path: Path) -> None:
    pty = PtyReader(tmp_path / "ttyACTIVE")
    broker = ShippedBroker(tmp_path / "broker")
    try:
        with fault_stack(pg_cluster, tmp_path, serial_port=pty.link, broker=broker) as stack:
            figures = _crash_rounds(stack, PtyStream(pty), rounds=3)
            assert figures["alerts"] >= 20
    finally:
        pty.close()


def _saved_since(broker: ShippedBroker, since_s: float, timeout_s: float = 30) -> None:
    """Wait until the broker wrote its persistence file after ``since_s`` (wall clock)."""
    db = broker.conf.parent / "data" / "mosquitto.db"

    def saved() -> bool:
        return db.exists() and db.stat().st_mtime > since_s

    wait_until(saved, timeout_s, "the broker's next autosave")


@pytest.mark.faults_full
def test_broker_kill9_after_a_save_loses_no_networked_read(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    """Networked readers publish to the broker itself: what it acknowledged to them is at risk
    until a gateway has it. The gateway is connected (it takes each message within
    milliseconds), and each SIGKILL comes after the broker saved the gateway's subscription
    (``autosave_interval`` as shipped); every message the broker acknowledged to the reader is
    then stored once. (Killed before that save, the restarted broker forgets the
    subscription, and what readers publish until the gateway subscribes again is dropped:
    docs/reliability.md, R7's bounds.)"""
    broker = ShippedBroker(tmp_path / "broker")
    with fault_stack(pg_cluster, tmp_path, broker=broker) as stack:
        stack.stream.start()
        for _ in range(2):
            subscribed_at = time.time()  # the stack is ready: the gateway has subscribed
            stack.wait_more(400, 30, "the stream to be stored")
            _saved_since(broker, subscribed_at)
            broker.kill()
            broker.start()
            wait_until(
                lambda: metric(stack.gateway_metrics, "tagtrail_gateway_broker_connected") == 1,
                20,
                "the gateway to reconnect",
            )
        stack.wait_more(400, 60, "storage after the last crash")
        check_invariant(stack)
