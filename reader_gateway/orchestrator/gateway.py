"""The gateway process: transports in, spool in the middle, broker out.

Steps of one turn of :meth:`Gateway.step`, in order:
1. take what the transports queued (raw MQTT messages; serial chunks, decoded on their thread);
2. decode raw messages, count frames/rejects per reader, normalize the reads (each bound to
   the reader its topic or port proves; refusals counted and logged): :mod:`.intake`;
3. cut batches when one is full, the oldest pending read waited ``max_delay_s``, or raw
   messages are waiting for their acknowledgement and nothing else is queued;
   append them to the spool with one fsync, and only then acknowledge the raw messages
   (a read counts as accepted once it is spooled); when the spool cannot write, the cut's
   raw messages stay unacknowledged (the broker keeps them) and are handled again every
   ``_HOLD_RETRY_S``: :mod:`.cutter`;
4. process PUBACKs and the engines' stored confirmations: a record leaves the spool once an
   engine confirmed it committed it (``spool.keep_until = "stored"``, the default; a broker's
   PUBACK is not durable: Mosquitto saves its queues only now and then), or at its PUBACK
   (``"published"``); unconfirmed records are published again after a reconnect, when an
   engine announces it (re)subscribed, and when none was confirmed for ``confirm_timeout_s``:
   :mod:`.publisher`;
5. publish unsent spool records in order while fewer than ``max_inflight`` are unacknowledged
   or unconfirmed (and only while connected: what is not in flight waits on disk, not in
   paho's memory or the broker's): :mod:`.publisher` too;
6. publish reader status (retained) on a change and every ``status_interval_s``: :mod:`.status`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import start_http_server

from reader_gateway.config import GatewayConfig
from reader_gateway.health import GatewayMetrics, ReaderHealth
from reader_gateway.orchestrator.cutter import Cutter
from reader_gateway.orchestrator.intake import Intake
from reader_gateway.orchestrator.publisher import Publisher
from reader_gateway.orchestrator.status import StatusPublisher
from reader_gateway.pipeline.clock import ClockEstimator
from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.pipeline.refusals import ReadWindow
from reader_gateway.quarantine import Quarantine
from reader_gateway.spool import Spool
from reader_gateway.transport.llrp import LlrpReader
from reader_gateway.transport.llrp_session import LlrpChunk, LlrpState
from reader_gateway.transport.mqtt_link import MqttLink, RawMessage
from reader_gateway.transport.serial import PortState, SerialChunk, SerialReader

log = logging.getLogger(__name__)

_MAX_TAKE = 10_000  # inbox items handled per step, so acks and publishing keep up
# Serial chunks (a few KiB of decoded frames each) may wait for the gateway thread up to this
# many; past it the reader threads wait, so a busy port backs up in the OS and the reader
# instead of in this process (unbounded, a gateway behind its ports held 1.7 GB of reads).
_MAX_QUEUED = 256
_FINISH_S = 5.0  # how long stopping may take to spool what the ports had read
_QUEUE_WAIT_S = 0.002

_InboxItem = RawMessage | SerialChunk | PortState | LlrpChunk | LlrpState


class Gateway:
    """One gateway: serial readers and raw MQTT subscriptions to spooled, published batches."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        clock = config.clock
        self.normalizer = Normalizer(
            config.gateway_id,
            shard_count=config.shard_count,
            dedupe_window_s=config.batching.dedupe_window_s,
            max_batch_reads=config.batching.max_reads,
            clock=ClockEstimator(
                clock.offsets_s,
                window=clock.window,
                min_samples=clock.min_samples,
                enabled=clock.estimate,
            ),
            reader_aliases=config.reader_aliases,
            read_window=ReadWindow(clock.max_read_age_s, clock.max_read_lead_s),
        )
        self.spool = Spool(
            config.spool.dir,
            max_bytes=config.spool.max_bytes,
            segment_bytes=config.spool.segment_bytes,
        )
        self.metrics.spool_corrupt.set(self.spool.corrupt_segments)
        self.quarantine = Quarantine(config.spool.dir, max_bytes=config.spool.quarantine_max_bytes)
        self.readers: dict[str, ReaderHealth] = {
            s.reader_id: ReaderHealth(s.reader_id, s.protocol, connected=False)
            for s in config.serial
        } | {r.reader_id: ReaderHealth(r.reader_id, "llrp", connected=False) for r in config.llrp}
        self._inbox: queue.Queue[Any] = queue.Queue()
        acks: queue.Queue[int] = queue.Queue()
        confirms: queue.Queue[list[int]] = queue.Queue()
        self._stepped = threading.Condition()
        self._metrics_server: Any = None
        self.link = MqttLink(
            config,
            filters=[m.topic for m in config.mqtt],
            inbox=self._inbox,
            acks=acks,
            confirms=confirms if config.spool.keep_until == "stored" else None,
        )
        self.connected = self.link.ready
        self._closing = threading.Event()
        self._status = StatusPublisher(config, self.link, self.metrics, self.readers)
        self._intake = Intake(
            config,
            self.normalizer,
            metrics=self.metrics,
            quarantine=self.quarantine,
            readers=self.readers,
            status=self._status,
        )
        self._cutter = Cutter(
            config,
            self.normalizer,
            spool=self.spool,
            link=self.link,
            metrics=self.metrics,
            intake=self._intake,
        )
        self._publisher = Publisher(
            config, spool=self.spool, link=self.link, metrics=self.metrics, acks=acks,
            confirms=confirms,
        )  # fmt: skip
        self.serial = [SerialReader(s, self._from_serial) for s in config.serial]
        # LLRP readers' reports, like serial bytes, exist nowhere else once read.
        self.llrp = [LlrpReader(r, self._from_serial) for r in config.llrp]

    def _from_serial(self, item: SerialChunk | PortState | LlrpChunk | LlrpState) -> None:
        """Queue a serial reader's output, waiting while the gateway thread is behind."""
        while self._inbox.qsize() >= _MAX_QUEUED and not self._closing.is_set():
            self._closing.wait(_QUEUE_WAIT_S)  # backpressure, not synchronisation
        self._inbox.put(item)

    def _ports(self) -> list[SerialReader | LlrpReader]:
        return [*self.serial, *self.llrp]

    # -- counters ----------------------------------------------------------------------------

    @property
    def messages_in(self) -> int:
        """Raw MQTT messages taken from the broker (a held one handled again counts once)."""
        return self._intake.messages_in

    @property
    def messages_acked(self) -> int:
        """Raw MQTT messages acknowledged to the broker (their reads are in the spool): what
        the broker no longer holds for this gateway."""
        return self._cutter.raw_acked

    @property
    def reads_accepted(self) -> int:
        """Reads spooled."""
        return self._cutter.reads_accepted

    @property
    def reads_refused(self) -> int:
        """Serial reads the spool could not take: lost."""
        return self._cutter.reads_refused

    @property
    def reads_deferred(self) -> int:
        """Reads of raw messages left unacknowledged for the broker (the spool refused them)."""
        return self._cutter.reads_deferred

    @property
    def raw_left_with_broker(self) -> int:
        """Held raw messages past the hold limit: back from the broker after a reconnect."""
        return self._cutter.raw_left_with_broker

    @property
    def batches_out(self) -> int:
        """Batches the broker acknowledged."""
        return self._publisher.batches_out

    @property
    def reads_out(self) -> int:
        """Reads in the batches the broker acknowledged."""
        return self._publisher.reads_out

    @property
    def reads_confirmed(self) -> int:
        """Reads an engine confirmed it stored."""
        return self._publisher.reads_confirmed

    @property
    def batches_republished(self) -> int:
        """Unconfirmed batches published again."""
        return self._publisher.batches_republished

    @property
    def inflight(self) -> int:
        """Batches published and not yet acknowledged (never more than ``max_inflight``)."""
        return self._publisher.inflight

    @property
    def inflight_reads(self) -> int:
        """Reads in the batches that are in flight."""
        return self._publisher.inflight_reads

    @property
    def unconfirmed(self) -> int:
        """Batches the broker acknowledged and no engine confirmed yet."""
        return self._publisher.unconfirmed

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Serve metrics, connect to the broker, open the serial ports."""
        port = self.config.health.metrics_port
        if port is not None:
            self._metrics_server = start_http_server(
                port, addr=self.config.health.metrics_host, registry=self.metrics.registry
            )
        self.link.start()
        for reader in self._ports():
            reader.start()

    def run(self, stop: threading.Event) -> None:
        """Run steps until ``stop`` is set, then stop the ports and spool what is pending."""
        while not stop.is_set():
            self.step(timeout_s=0.05)
        self.finish()

    def finish(self) -> None:
        """Stop the serial ports, then handle and spool everything they read.

        The ports stop first: a chunk a port read after the last drain would otherwise be
        in no spool (its bytes are gone from the port). The inbox is drained whole, past one
        step's item limit, within ``_FINISH_S`` (the broker side may still be delivering).
        """
        self._closing.set()  # a port waiting for room in the inbox puts its chunk and ends
        ports = self._ports()
        for port in ports:  # all asked first, so none reads on while another stops
            port.stop(timeout_s=0.0)
        for port in ports:
            port.stop()
        deadline = time.monotonic() + _FINISH_S
        while not self._inbox.empty() and time.monotonic() < deadline:
            self._drain_inbox(block_s=0)
        if not self._inbox.empty():
            log.error(
                "stopping: %d inbox items not handled within %.0f s (lost if serial)",
                self._inbox.qsize(),
                _FINISH_S,
            )
        if self.normalizer.pending_reads or self._cutter.unacked_raw:
            self._cutter.cut()

    def close(self) -> None:
        """Stop the ports, say offline, disconnect, close the spool and the metrics server."""
        self._closing.set()
        for port in self._ports():
            port.stop()
        self.link.close()
        self.spool.close()
        if self._metrics_server is not None:
            server, thread = self._metrics_server
            server.shutdown()
            thread.join(2)

    def idle(self) -> bool:
        """True when nothing is waiting to be decoded, spooled or acknowledged."""
        return (
            self._inbox.empty()
            and self.normalizer.pending_reads == 0
            and not self._cutter.unacked_raw
            and not self._cutter.held
            and self.spool.unacked == 0
        )

    def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``condition()`` holds after a step (for callers on other threads)."""
        with self._stepped:
            return self._stepped.wait_for(condition, timeout_s)

    # -- one step ----------------------------------------------------------------------------

    def step(self, timeout_s: float = 0.05) -> None:
        """One turn of the pipeline (see the module docstring)."""
        self._drain_inbox(block_s=timeout_s)
        now = time.monotonic()
        if self._cutter.retry_due(now):
            self._cutter.retry_held()
        if self._cutter.should_cut(now, inbox_empty=self._inbox.empty()):
            self._cutter.cut()
        self._publisher.drain_acks()
        self._publisher.pump()
        if self._status.due(now):
            self._cutter.flush_read_counts()
            self._status.publish(time.time())
        with self._stepped:
            self._stepped.notify_all()

    def _drain_inbox(self, *, block_s: float) -> None:
        try:
            item = self._inbox.get(timeout=block_s) if block_s > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return
        taken = 0
        while True:
            self._handle(item)
            taken += 1
            # Cut as soon as a batch is full, so that a burst never makes one oversized batch,
            # and publish what was cut right away: busy serial ports keep the inbox full, and
            # publishing only after the inbox was drained let the spool grow without bound
            # while the broker waited (reads accepted, not sent).
            if self.normalizer.fullest_batch >= self.config.batching.max_reads:
                self._cutter.cut()
                self._publisher.drain_acks()
                self._publisher.pump()
            # Stop before taking another item, never after: an item taken out of the inbox
            # and not handled is lost (its bytes are gone from the port). Busy ports keep the
            # inbox from emptying, so this limit is reached at an overfeed; the rest waits.
            if taken >= _MAX_TAKE:
                return
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, item: _InboxItem) -> None:
        if isinstance(item, RawMessage):
            self._cutter.await_ack(item)
        self._cutter.note_kept(self._intake.handle(item))
