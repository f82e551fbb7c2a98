"""Emission: simulated reads turned into real reader messages and sent the way readers send them.

Every payload is built by the gateway's own protocol encoders, so the bytes are the bytes a real
reader sends:

- ``impinj-iot``: one ``tagInventory`` JSON event per read (hostname = reader id);
- ``zebra-iotc``: one tag data event per read (``eventNum`` counts per reader, timestamps in the
  reader's local zone, UTC+8), and a heartbeat every ``heartbeat_s`` of reader time;
- ``r2000``: one tag frame per read and a round summary after the last read of each second;
- ``tagtrail-active``: one 32-byte frame per read (``reader_seq`` counts per reader, the reader
  id is the serial device id of :func:`device_ids`);
- ``llrp``: one RO_ACCESS_REPORT per read (message id counts per reader, PeakRSSI in whole
  dBm, FirstSeenTimestampUTC the reader's clock), served by :mod:`simulators.llrp_readers`.

Serial payloads are sometimes preceded by a few garbage bytes (line noise, a reader rebooting
mid-frame) with probability ``garbage_prob``; the gateway's splitters must skip them.

Networked readers publish their JSON to ``<prefix>/raw/<protocol>/<reader_id>`` (the topic the
gateway subscribes to, :class:`MqttEmitter`); serial readers write their frames to ptys
(:mod:`simulators.ptys`); LLRP readers serve theirs over TCP (:mod:`simulators.llrp_readers`);
any can also go to files (:mod:`simulators.output`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as mqtt
import pandas as pd
from numpy.typing import NDArray
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_target
from reader_gateway.protocols import r2000, tagtrail_active
from reader_gateway.protocols.impinj_iot import encode_tag_inventory_event
from reader_gateway.protocols.llrp_encode import TagReport, encode_ro_access_report
from reader_gateway.protocols.zebra_iotc import encode_heartbeat, encode_tag_data_event
from simulators.keyed_random import KeyedRandom
from simulators.readers import SERIAL_PROTOCOLS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_S_GARBAGE, _S_GARBAGE_LEN, _S_GARBAGE_BYTES = 51, 52, 53  # keyed-random streams
READER_UTC_OFFSET_MINUTES = 480  # the readers' local zone (China Standard Time)


@dataclass(frozen=True, slots=True)
class ReaderMessage:
    """One message a reader sends: its protocol, reader id, bytes, and when (true time)."""

    protocol: str
    reader_id: str
    payload: bytes
    true_at_us: int


def device_ids(reader_ids: list[str]) -> dict[str, int]:
    """The u32 id an active reader writes in its frames: 1, 2, ... in sorted reader-id order."""
    return {r: k + 1 for k, r in enumerate(sorted(reader_ids))}


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def reader_messages(
    reads: pd.DataFrame,
    protocols: dict[str, str],
    *,
    seed: int = 0,
    garbage_prob: float = 0.0,
    heartbeat_s: float = 60.0,
) -> Iterator[ReaderMessage]:
    """Encode simulated reads (rf.simulate_reads columns) as each reader's wire messages.

    Messages are yielded in true-time order (reads of one reader in their order); the payload
    carries the reader's own clock. Everything but the final per-message encoding (order, per
    reader counters, round ends, garbage, heartbeats) is computed on whole columns; the same
    reads and arguments always give the same messages.
    """
    # Message order: true time, ties broken by every other column, so that the same reads give
    # the same messages whatever order they come in (simulators.emit_files relies on it).
    tag_code = reads["tag_id"].astype("category").cat.codes.to_numpy()
    ordered = reads.iloc[np.lexsort((
        reads["rssi_dbm"].to_numpy(), tag_code, reads["antenna"].to_numpy(),
        reads["read_at_us"].to_numpy(), reads["true_at_us"].to_numpy(),
    ))]  # fmt: skip
    rid = ordered["reader_id"].astype(str).to_numpy()
    proto = pd.Series(rid).map(protocols)
    if proto.isna().any():
        raise ValueError(f"no protocol for readers {sorted(set(rid[proto.isna().to_numpy()]))}")
    proto_arr = proto.to_numpy(dtype=object)
    true_at = ordered["true_at_us"].to_numpy(np.int64)
    read_at = ordered["read_at_us"].to_numpy(np.int64)
    # Per-reader counters (eventNum, reader_seq) in the reader's own order.
    seq = np.asarray(pd.Series(rid).groupby(rid, sort=False).cumcount().to_numpy(), np.int64)
    # R2000: a round ends with the reader's last read of each second (reader time).
    second = read_at // 1_000_000
    key = pd.DataFrame({"r": rid, "s": second})
    last_of_round = ~key.duplicated(keep="last").to_numpy()
    round_total = key.groupby(["r", "s"], sort=False)["s"].transform("size").to_numpy()
    serial = np.isin(proto_arr, list(SERIAL_PROTOCOLS))
    rank = np.searchsorted(np.array(sorted(protocols), dtype=str), rid.astype(str))
    g_mat, garbage_len = garbage(seed, rank, seq, serial, garbage_prob)
    devices = device_ids(sorted(set(protocols)))
    beats = _heartbeats(rid, proto_arr, read_at, true_at, heartbeat_s)
    cols = ordered[["antenna", "tag_id", "rssi_dbm"]]
    rows = zip(
        rid, proto_arr, cols["antenna"].to_numpy(), cols["tag_id"].astype(str).to_numpy(),
        cols["rssi_dbm"].to_numpy(np.float64), read_at, true_at, seq, last_of_round,
        round_total, garbage_len, g_mat, strict=True,
    )  # fmt: skip
    b = 0
    for reader, protocol, ant, tag, rssi, r_at, t_at, n, last, total, g_len, g_row in rows:
        while b < len(beats) and beats[b].true_at_us <= t_at:
            yield beats[b]
            b += 1
        if protocol == "impinj-iot":
            payload = encode_tag_inventory_event(
                hostname=reader, tag_id=tag, antenna=int(ant), rssi_dbm=rssi, read_at=_at(r_at)
            )
        elif protocol == "zebra-iotc":
            payload = encode_tag_data_event(
                tag_id=tag, antenna=int(ant), rssi_dbm=rssi, read_at=_at(r_at),
                event_num=int(n) + 1, utc_offset_minutes=READER_UTC_OFFSET_MINUTES,
            )  # fmt: skip
        elif protocol == "r2000":
            payload = r2000.encode_tag_frame(tag_id=tag, antenna=int(ant), rssi_dbm=rssi)
            if last:
                payload += r2000.encode_round_end(antenna=int(ant), total_read=int(total))
        elif protocol == "llrp":  # one TagReportData per RO_ACCESS_REPORT (the ROSpec's N = 1)
            report = TagReport(tag, int(ant), int(np.rint(rssi)), first_seen=_at(r_at))
            payload = encode_ro_access_report([report], message_id=int(n) & 0xFFFF_FFFF)
        elif protocol == "tagtrail-active":
            payload = tagtrail_active.encode_frame(
                reader_id=devices[reader], reader_seq=int(n) & 0xFFFF_FFFF, read_at=_at(r_at),
                tag_id=tag, rssi_dbm=rssi, antenna=int(ant),
            )  # fmt: skip
        else:
            raise ValueError(f"reader {reader}: no emitter for protocol {protocol!r}")
        if g_len:
            payload = g_row[:g_len].tobytes() + payload
        yield ReaderMessage(protocol, reader, payload, int(t_at))
    yield from beats[b:]


def garbage(
    seed: int,
    rank: NDArray[np.int64],
    seq: NDArray[np.int64],
    serial: NDArray[np.bool_],
    prob: float,
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Line noise before serial messages: up to 8 random bytes (rows) and how many (lengths).

    Keyed by (reader rank in sorted reader ids, the reader's message number) and ``seed``, so
    a reader's stream is the same however many other readers are encoded with it.
    """
    rand = KeyedRandom(seed)
    hit = np.flatnonzero(serial & (rand.uniform(_S_GARBAGE, rank, seq) < prob))
    length = np.zeros(len(rank), np.int64)
    length[hit] = rand.integers(_S_GARBAGE_LEN, 1, 9, rank[hit], seq[hit])
    mat = np.zeros((len(rank), 8), np.uint8)
    if len(hit):
        byte = np.arange(8)[None, :]
        mat[hit] = rand.integers(_S_GARBAGE_BYTES, 0, 256, rank[hit, None], seq[hit, None], byte)
    return mat, length


def _heartbeats(
    rid: np.ndarray, proto: np.ndarray, read_at: np.ndarray, true_at: np.ndarray, every_s: float
) -> list[ReaderMessage]:
    """Zebra heartbeats every ``every_s`` of reader time between a reader's first and last read.

    A reader in an outage sends no reads, so it is the heartbeats' absence around the reads'
    absence that tells the gateway the reader (not the street) went quiet.
    """
    zebra = proto == "zebra-iotc"
    if not zebra.any() or every_s <= 0:
        return []
    frame = pd.DataFrame({"r": rid[zebra], "read": read_at[zebra], "true": true_at[zebra]})
    span = frame.groupby("r", sort=True).agg(
        first=("read", "min"), last=("read", "max"), off=("read", "first"), t=("true", "first")
    )
    step = round(every_s * 1e6)
    out: list[ReaderMessage] = []
    for reader, first, last, off, t in span.itertuples(name=None):
        offset = int(off) - int(t)  # this reader's clock minus true time, near its first read
        for at in range(-(-int(first) // step) * step, int(last) + 1, step):
            payload = encode_heartbeat(at=_at(at), utc_offset_minutes=READER_UTC_OFFSET_MINUTES)
            out.append(ReaderMessage("zebra-iotc", str(reader), payload, at - offset))
    out.sort(key=lambda m: (m.true_at_us, m.reader_id))
    return out


class MqttEmitter:
    """Publishes reader messages with QoS 1, never more than ``max_inflight`` unacknowledged."""

    def __init__(
        self, mqtt_url: str, *, topic_prefix: str, client_id: str, max_inflight: int = 200
    ) -> None:
        self.topic_prefix = topic_prefix
        self.published = 0
        self._max_inflight = max_inflight
        self._inflight = 0
        self._cv = threading.Condition()
        target = mqtt_target(mqtt_url)  # credentials and TLS come with the URL
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        target.configure(self._client)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.on_publish = self._on_publish
        self._client.connect(target.host, target.port, keepalive=30)
        self._client.loop_start()

    def _on_publish(self, *_: object) -> None:
        with self._cv:
            self._inflight -= 1
            self._cv.notify_all()

    def publish(self, message: ReaderMessage) -> None:
        """Publish one reader message (blocks while too many are unacknowledged)."""
        topic = f"{self.topic_prefix}/raw/{message.protocol}/{message.reader_id}"
        with self._cv:
            self._cv.wait_for(lambda: self._inflight < self._max_inflight)
            self._inflight += 1
        self._client.publish(topic, message.payload, qos=1)
        self.published += 1

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every published message is acknowledged by the broker."""
        with self._cv:
            return self._cv.wait_for(lambda: self._inflight == 0, timeout=timeout_s)

    def replay(
        self,
        messages: Iterator[ReaderMessage],
        *,
        stop: threading.Event,
        speedup: float | None = None,
        wall_start: float | None = None,
        sim_start_us: int | None = None,
        backlog: Callable[[], int] | None = None,
        max_backlog: int = 500,
    ) -> None:
        """Publish messages; paced to their true time (x ``speedup``) unless speedup is None.

        With pacing, a message whose time has already passed goes out at once (catch-up).
        ``backlog`` (messages published but not yet taken by the consumer) lets an
        as-fast-as-possible run wait for its consumer: a broker holds only so many queued
        QoS 1 messages for a slow subscriber (Mosquitto: max_queued_messages, 1000 by default)
        and drops the rest, which a real reader's pace never provokes but a simulator's can.
        """
        for message in messages:
            if stop.is_set():
                return
            while backlog is not None and backlog() > max_backlog:
                if stop.wait(0.005):
                    return
            if speedup is not None and wall_start is not None and sim_start_us is not None:
                due = wall_start + (message.true_at_us - sim_start_us) / 1e6 / speedup
                delay = due - time.time()
                if delay > 0 and stop.wait(delay):
                    return
            self.publish(message)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()
