"""Publishing spooled batches, and letting them go once they are safe.

Unsent spool records are published in order while fewer than ``max_inflight`` are
unacknowledged or unconfirmed, and only while connected: what is not in flight waits on
disk, not in paho's memory or the broker's. A record leaves the spool once an engine
confirmed it committed it (``spool.keep_until = "stored"``, the default; a broker's PUBACK is
not durable: Mosquitto saves its queues only now and then), or at its PUBACK
(``"published"``). Unconfirmed records are published again after a reconnect, when an engine
announces it (re)subscribed, and when none was confirmed for ``confirm_timeout_s`` (the wait
doubling up to ``_CONFIRM_BACKOFF`` timeouts).
"""

from __future__ import annotations

import logging
import queue
import time

from reader_gateway.config import GatewayConfig
from reader_gateway.health import GatewayMetrics
from reader_gateway.orchestrator.records import decode_record
from reader_gateway.spool import Spool
from reader_gateway.transport.mqtt_link import MqttLink
from reader_gateway.wire import reads_topic

log = logging.getLogger(__name__)

_CONFIRM_CHECK_S = 0.5  # how often the oldest unconfirmed batch's wait is looked at
_CONFIRM_BACKOFF = 16  # the wait for a confirmation grows to at most this many timeouts


class Publisher:
    """The publish window over the spool: PUBACKs, engines' confirmations, republishing."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        spool: Spool,
        link: MqttLink,
        metrics: GatewayMetrics,
        acks: queue.Queue[int],
        confirms: queue.Queue[list[int]],
    ) -> None:
        self.config = config
        self.spool = spool
        self.link = link
        self.metrics = metrics
        self._acks = acks
        self._confirms = confirms
        self._keep_until_stored = config.spool.keep_until == "stored"
        self.batches_out = 0
        self.reads_out = 0
        self.reads_confirmed = 0
        self.batches_republished = 0
        # mid -> (record id, reads, republish round it was published in)
        self._inflight: dict[int, tuple[int, int, int]] = {}
        # record id -> when its PUBACK came: acknowledged by the broker, not yet confirmed by
        # an engine
        self._unconfirmed: dict[int, float] = {}
        self._reads_of: dict[int, int] = {}  # record id -> reads, from its first publish on
        self._round = 0  # bumped at every republish
        self._connects_seen = 0
        self._confirm_wait_s = config.spool.confirm_timeout_s
        self._next_confirm_check = 0.0

    @property
    def inflight(self) -> int:
        """Batches published and not yet acknowledged (never more than ``max_inflight``)."""
        return len(self._inflight)

    @property
    def inflight_reads(self) -> int:
        """Reads in the batches that are in flight."""
        return sum(reads for _, reads, _ in self._inflight.values())

    @property
    def unconfirmed(self) -> int:
        """Batches the broker acknowledged and no engine confirmed yet."""
        return len(self._unconfirmed)

    def drain_acks(self) -> None:
        """Take the PUBACKs and (keeping until stored) the engines' confirmations."""
        now = time.monotonic()
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            entry = self._inflight.pop(mid, None)
            if entry is None:
                continue  # a status message's PUBACK
            record_id, reads, published_round = entry
            self.batches_out += 1
            self.reads_out += reads
            self.metrics.batches_published.inc()
            self.metrics.reads_published.inc(reads)
            if not self._keep_until_stored:
                self.spool.ack(record_id)
                self._reads_of.pop(record_id, None)
            elif not self.spool.holds(record_id):
                continue  # confirmed before its PUBACK came
            elif published_round < self._round:
                # Published before a republish was called for (an engine had just lost its
                # subscription, say): the broker may have dropped it, so it goes out again.
                self.spool.requeue_many([record_id])
            else:
                self._unconfirmed[record_id] = now
        if self._keep_until_stored:
            self._drain_confirms(now)
        self.metrics.inflight.set(len(self._inflight))
        self.metrics.spool_unacked.set(self.spool.unacked)
        self.metrics.spool_bytes.set(self.spool.bytes_used)
        self.metrics.broker_connected.set(1 if self.link.is_connected.is_set() else 0)

    def _drain_confirms(self, now: float) -> None:
        """Engines' confirmations and announcements; republish what may have been lost."""
        confirmed = 0
        announced = False
        while True:
            try:
                seqs = self._confirms.get_nowait()
            except queue.Empty:
                break
            announced = announced or not seqs
            for record_id in seqs:
                if not self.spool.holds(record_id):
                    continue  # confirmed twice (a republished batch), or not ours
                self._unconfirmed.pop(record_id, None)
                reads = self._reads_of.pop(record_id, None)
                if reads is None:  # never published by this process: the count is on disk
                    reads = decode_record(self.spool.read(record_id))[1]
                self.spool.ack(record_id)
                confirmed += 1
                self.reads_confirmed += reads
                self.metrics.reads_confirmed.inc(reads)
        if confirmed:
            self._confirm_wait_s = self.config.spool.confirm_timeout_s
        connects = self.link.connects
        if connects != self._connects_seen:
            # A new connection: the broker may have crashed and lost what it acknowledged.
            if self._connects_seen:
                self._republish("reconnected to the broker")
            self._connects_seen = connects
        if announced:
            self._republish("an engine (re)subscribed")
        if self._unconfirmed and now >= self._next_confirm_check:
            self._next_confirm_check = now + _CONFIRM_CHECK_S
            oldest = min(self._unconfirmed.values())
            if now - oldest >= self._confirm_wait_s:
                self._republish(f"no confirmation for {self._confirm_wait_s:.0f} s")
                base = self.config.spool.confirm_timeout_s
                self._confirm_wait_s = min(self._confirm_wait_s * 2, base * _CONFIRM_BACKOFF)
        self.metrics.unconfirmed.set(len(self._unconfirmed))

    def _republish(self, why: str) -> None:
        """Send every unconfirmed record again (in order, before unsent ones); records still
        waiting for their PUBACK go again when it comes."""
        self._round += 1
        if not self._unconfirmed and not self._inflight:
            return
        ids = sorted(self._unconfirmed)
        self._unconfirmed.clear()
        self.spool.requeue_many(ids)
        self.batches_republished += len(ids)
        self.metrics.batches_republished.inc(len(ids))
        log.warning("%s: publishing %d unconfirmed batches again", why, len(ids))

    def pump(self) -> None:
        """Publish unsent spool records while the window has room (and only connected)."""
        if not self.link.is_connected.is_set():
            return
        # Unconfirmed batches count against the window too: while no engine stores, the
        # backlog waits in the fsync'd spool, not in the broker's memory.
        room = self.config.broker.max_inflight - len(self._inflight) - len(self._unconfirmed)
        if room <= 0:
            return
        prefix = f"{self.config.topic_prefix}/reads"
        for record in self.spool.take_unsent(room):
            shard, reads, wire = decode_record(record.payload)
            mid = self.link.publish(reads_topic(shard, prefix), wire)
            if mid is None:
                self.spool.requeue(record.record_id)
                break
            self._inflight[mid] = (record.record_id, reads, self._round)
            self._reads_of[record.record_id] = reads
