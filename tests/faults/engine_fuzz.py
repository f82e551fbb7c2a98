"""Seeded fuzzing of the engine's batch consumer: random, wire-valid batches through the real
broker into a real :class:`EngineService` and PostgreSQL, and the books kept on both sides.

Each batch is drawn from a seeded generator (numpy ``default_rng``; a failing seed replays):

- sizes from empty to 20,000 reads (most small, a few large);
- read times mostly around the engine's clock, but also anywhere in the accepted window
  (days back, minutes ahead) and far outside it (1970, 2000, 2038, 2099, int64's ends);
- reader ids from a pool of 200, now and then one that is empty, too long or COPY syntax;
- tag ids of 1–124 hex digits from a pool (so tags recur across batches) or new;
- duplicates: a batch published twice (a redelivery), earlier reads sent again in a later
  batch, and repeated reads inside one batch.

The generator knows which reads the engine must store and which it must refuse, and why. The
invariant (:meth:`Books.check`): every accepted read is stored exactly once (the stored keys
equal the distinct accepted keys, compared in SQL), every refused read is counted under its
reason, every message with a refused read is in the quarantine, the worker never raised and
never stopped making progress (no wedge), and every message was acknowledged.

Read times keep ``MARGIN_S`` away from the window's edges: the engine judges them by its clock
when the message arrives, a moment after the generator drew them. The publisher keeps at most
``MAX_IN_FLIGHT`` messages unacknowledged by the engine, so that moment stays short.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from numpy.typing import NDArray
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.wire import ReadBatch, encode_batch, reads_topic
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.screening import READ_AT_MAX_US, READ_AT_MIN_US, Refusal

MAX_AGE_S = 2 * 86_400.0
MAX_AHEAD_S = 300.0
MARGIN_S = 60.0
MAX_IN_FLIGHT = 256
STALL_S = 120.0  # no message acknowledged for this long, with some outstanding: wedged
_S = 1_000_000
_FAR = [
    0, -(2**63), 2**63 - 1, 946_684_800_000_000, 978_307_200_000_000, 2_147_483_647_000_000,
    4_102_444_799_000_000, 4_102_444_800_000_000,
]  # fmt: skip
_BAD_READERS = ["", "R\\N", "R\t1", "R\x00", "R\x7f", "x" * 129]
_HEX = np.array(list("0123456789ABCDEF"))


@dataclass
class Books:
    """What the generator sent and what the engine must have done with it."""

    batches: int = 0  # drawn (each published once, twice, or as an earlier one again)
    redeliveries: int = 0  # an earlier batch published again
    deliveries: int = 0
    reads_sent: int = 0  # over all deliveries
    refused: dict[str, int] = field(default_factory=dict)  # by Refusal value, all deliveries
    quarantined_messages: int = 0
    # Accepted reads as codes: tag (pool index), reader (pool index), antenna, read_at_us.
    accepted: list[NDArray[np.int64]] = field(default_factory=list)

    def accepted_keys(self) -> NDArray[np.int64]:
        """Distinct accepted (tag, reader, antenna, read_at_us) rows."""
        if not self.accepted:
            return np.zeros((0, 4), dtype=np.int64)
        return np.unique(np.concatenate(self.accepted), axis=0)


class BatchFuzzer:
    """Seeded generator of wire-valid batches, with the books of what each must do."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.readers: list[str] = [f"RD{i:04d}" for i in range(200)] + _BAD_READERS
        self._bad_from = 200
        self.tags: list[str] = [self._new_tag() for _ in range(3000)]
        self.books = Books()
        self._history: list[tuple[bytes, int, dict[str, int], NDArray[np.int64], int]] = []
        self._seq = 0

    def _new_tag(self) -> str:
        length = int(self.rng.choice([4, 8, 16, 24, 32, int(self.rng.integers(1, 125))]))
        return "".join(self.rng.choice(_HEX, length))

    def _times(self, n: int, now_us: int) -> tuple[NDArray[np.int64], NDArray[np.int8]]:
        """Read times and their expected verdict: 0 accepted, 1 too old, 2 too far ahead."""
        rng = self.rng
        kind = rng.choice(6, n, p=[0.70, 0.12, 0.04, 0.06, 0.06, 0.02])
        margin = round(MARGIN_S * _S)
        oldest = now_us - round(MAX_AGE_S * _S) + margin
        newest = now_us + round(MAX_AHEAD_S * _S) - margin
        centre = now_us - int(rng.integers(0, 600 * _S))
        t = np.empty(n, dtype=np.int64)
        # 0: a cluster near the engine's clock, as a live reader sends
        t[kind == 0] = np.minimum(centre + rng.integers(-5 * _S, 5 * _S, (kind == 0).sum()), newest)
        t[kind == 1] = rng.integers(oldest, now_us, (kind == 1).sum())  # anywhere in the window
        t[kind == 2] = rng.integers(now_us, newest, (kind == 2).sum())  # minutes ahead
        old_lo = READ_AT_MIN_US - 30 * 365 * 86_400 * _S
        t[kind == 3] = rng.integers(old_lo, oldest - 2 * margin, (kind == 3).sum())  # too old
        t[kind == 4] = rng.integers(newest + 2 * margin, READ_AT_MAX_US + 10**15, (kind == 4).sum())
        t[kind == 5] = rng.choice(_FAR, (kind == 5).sum())
        verdict = np.where(t < oldest, 1, np.where(t > newest, 2, 0)).astype(np.int8)
        return t, verdict

    def next_batch(self, now_us: int) -> list[bytes]:
        """The payloads to publish next (one batch; twice, or an earlier one again, at times)."""
        rng = self.rng
        self.books.batches += 1
        if self._history and rng.random() < 0.03:  # an earlier batch redelivered
            payload, refused_n, refused, keys, reads = self._history[
                int(rng.integers(len(self._history)))
            ]
            # Judged again by the engine's clock now; the margins keep the verdicts the same
            # for the ~500 most recent batches kept here.
            self._book(refused_n, refused, keys, reads)
            self.books.redeliveries += 1
            return [payload]
        n = int(
            rng.choice(
                [0, rng.integers(1, 11), rng.integers(11, 101), rng.integers(101, 5001),
                 rng.integers(5001, 20_001)],
                p=[0.02, 0.66, 0.30, 0.019, 0.001],
            )
        )  # fmt: skip
        t, verdict = self._times(n, now_us)
        if rng.random() < 0.3:  # new tags, seen for the first time
            self.tags.extend(self._new_tag() for _ in range(int(rng.integers(1, 50))))
        tag = rng.integers(0, len(self.tags), n)
        k = int(rng.integers(1, 9))
        reader_pool = rng.integers(0, self._bad_from, k)
        if rng.random() < 0.01:  # a reader id the engine must refuse
            reader_pool[0] = rng.integers(self._bad_from, len(self.readers))
        reader = reader_pool[rng.integers(0, k, n)]
        antenna = np.where(rng.random(n) < 0.01, rng.integers(1, 32768, n), rng.integers(1, 5, n))
        keys = np.stack([tag, reader, antenna, t], axis=1).astype(np.int64)
        if self.books.accepted and n and rng.random() < 0.05:  # reads sent again, later
            earlier = self.books.accepted[int(rng.integers(len(self.books.accepted)))]
            picked = earlier[rng.integers(0, len(earlier), n // 2 + 1)]
            # Only those still safely inside the window (it moved on since they were sent).
            safe = np.flatnonzero(picked[:, 3] >= now_us - round((MAX_AGE_S - MARGIN_S) * _S))
            keys[safe] = picked[safe]
            verdict[safe] = 0
        if n > 1 and rng.random() < 0.03:  # repeats inside the batch
            m = int(rng.integers(1, n))
            rows = rng.integers(0, n, m)
            keys = np.concatenate([keys, keys[rows]])
            verdict = np.concatenate([verdict, verdict[rows]])
        payload, refused_n, refused, accepted = self._encode(keys, verdict, now_us)
        self._book(refused_n, refused, accepted, len(keys))
        self._history.append((payload, refused_n, refused, accepted, len(keys)))
        if len(self._history) > 500:
            self._history.pop(0)
        if rng.random() < 0.02:  # published twice in a row, as a spool replay would
            self._book(refused_n, refused, accepted, len(keys))
            return [payload, payload]
        return [payload]

    def _encode(
        self, keys: NDArray[np.int64], verdict: NDArray[np.int8], now_us: int
    ) -> tuple[bytes, int, dict[str, int], NDArray[np.int64]]:
        n = len(keys)
        rng = self.rng
        self._seq += 1
        used, reader_code = np.unique(keys[:, 1], return_inverse=True)
        tag = np.empty(n, dtype=object)
        tag[:] = [self.tags[i] for i in keys[:, 0].tolist()]
        rssi = np.where(rng.random(n) < 0.01, rng.uniform(-999, 999, n), rng.uniform(-90, -30, n))
        batch = ReadBatch(
            gateway_id=f"gw-fuzz-{self._seq % 7}", batch_seq=self._seq, sent_at_us=now_us,
            readers=tuple(self.readers[i] for i in used.tolist()),
            reader=reader_code.reshape(-1).astype(np.int32),
            antenna=keys[:, 2].astype(np.int16), tag=tag,
            rssi_dbm=rssi.astype(np.float32), read_at_us=keys[:, 3].copy(),
            seq=np.arange(n, dtype=np.int64) + self._seq * 100_000,
        )  # fmt: skip
        batch.validate()
        bad_reader = keys[:, 1] >= self._bad_from
        refused = {
            Refusal.TOO_OLD.value: int((verdict == 1).sum()),
            Refusal.TOO_FAR_AHEAD.value: int((verdict == 2).sum()),
            Refusal.BAD_READER_ID.value: int(((verdict == 0) & bad_reader).sum()),
        }
        accepted = keys[(verdict == 0) & ~bad_reader]
        return encode_batch(batch), int(sum(refused.values())), refused, accepted

    def _book(
        self, refused_n: int, refused: dict[str, int], accepted: NDArray[np.int64], reads: int
    ) -> None:
        b = self.books
        b.deliveries += 1
        b.reads_sent += reads
        for why, count in refused.items():
            if count:
                b.refused[why] = b.refused.get(why, 0) + count
        b.quarantined_messages += refused_n > 0
        if len(accepted):
            b.accepted.append(accepted)


def run_fuzz(
    *, db_url: str, mqtt_url: str, batches: int, seed: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Publish ``batches`` fuzzed batches to an engine worker and check the books; returns
    the figures. Raises AssertionError on a crash, a wedge or a broken invariant."""
    prefix = f"fuzz-{uuid.uuid4().hex[:10]}/v1"
    shards = (0, 1, 2, 3)
    service = EngineService(
        EngineConfig(
            database_url=db_url, mqtt_url=mqtt_url, topic_prefix=prefix, shards=shards,
            client_id=f"engine-{prefix}", persistent_session=False, gap_s=10.0,
            read_max_age_s=MAX_AGE_S, read_max_ahead_s=MAX_AHEAD_S,
        )
    )  # fmt: skip
    crashed: list[BaseException] = []
    stop = threading.Event()

    def work() -> None:
        try:
            service.run(stop)
        except BaseException as exc:  # the finding: reported, not swallowed
            crashed.append(exc)
            raise

    fuzzer = BatchFuzzer(seed)
    started = time.monotonic()
    service.start()
    deadline = time.monotonic() + 30
    while not service.connected.is_set():
        assert time.monotonic() < deadline, "the engine never subscribed"
        time.sleep(0.05)  # waiting for the SUBACK
    worker = threading.Thread(target=work, name="fuzz-engine", daemon=True)
    worker.start()
    host, port = mqtt_endpoint(mqtt_url)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fuzz-pub-{prefix}")
    pub.max_inflight_messages_set(MAX_IN_FLIGHT)
    pub.connect(host, port)
    pub.loop_start()
    published = 0
    last_acked, last_progress = 0, time.monotonic()

    def acked() -> int:
        with service.counters.lock:
            return service.counters.messages_acked

    def watch(limit: int) -> None:
        """Wait until at most ``limit`` messages are unacknowledged; fail on crash or wedge."""
        nonlocal last_acked, last_progress
        while True:
            assert not crashed, f"the engine's worker raised {crashed[0]!r}"
            assert worker.is_alive(), "the engine's worker stopped"
            done = acked()
            if done != last_acked:
                last_acked, last_progress = done, time.monotonic()
            if published - done <= limit:
                return
            stalled = time.monotonic() - last_progress
            assert stalled < STALL_S, f"wedged: {published - done} messages unacked {stalled:.0f} s"
            time.sleep(0.002)  # the engine's counter is the condition

    try:
        for i in range(batches):
            for payload in fuzzer.next_batch(time.time_ns() // 1000):
                shard = int(fuzzer.rng.integers(0, len(shards)))
                pub.publish(reads_topic(shard, f"{prefix}/reads"), payload, qos=1)
                published += 1
            watch(MAX_IN_FLIGHT)
            if i and i % 10_000 == 0:
                progress(
                    f"{i} batches, {acked()} messages acked, {time.monotonic() - started:.0f} s"
                )
        watch(0)
        seconds = time.monotonic() - started
    finally:
        stop.set()
        worker.join(60)
        service.close()
        pub.disconnect()
        pub.loop_stop()
    return _check(service, fuzzer.books, fuzzer, db_url, published, seconds, seed)


def _check(
    service: EngineService, books: Books, fuzzer: BatchFuzzer, db_url: str, published: int,
    seconds: float, seed: int,
) -> dict[str, Any]:  # fmt: skip
    expected = books.accepted_keys()
    c = service.counters
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "CREATE TEMP TABLE expected (tag_id text, reader_id text, antenna smallint,"
            " read_at_us bigint)"
        )
        with conn.cursor().copy("COPY expected FROM STDIN") as copy:
            for tag, reader, antenna, at in expected.tolist():
                copy.write_row((fuzzer.tags[tag], fuzzer.readers[reader], antenna, at))
        row = conn.execute(
            """WITH stored AS (
                   SELECT tag_id, reader_id, antenna,
                          (extract(epoch FROM read_at) * 1000000)::bigint AS read_at_us
                   FROM reads)
               SELECT (SELECT count(*) FROM reads),
                      (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM stored) m),
                      (SELECT count(*) FROM (SELECT * FROM stored EXCEPT SELECT * FROM expected) x),
                      (SELECT count(*) FROM quarantine),
                      (SELECT count(*) FROM passages),
                      (SELECT count(*) FROM pg_inherits WHERE inhparent = 'reads'::regclass)"""
        ).fetchone()
    assert row is not None
    stored, missing, unexpected, quarantine_rows, passages, partitions = (int(v) for v in row)
    figures = {
        "seed": seed,
        "batches": books.batches,
        "redeliveries": books.redeliveries,
        "messages": published,
        "reads_sent": books.reads_sent,
        "reads_accepted_distinct": len(expected),
        "reads_stored": stored,
        "reads_missing": missing,
        "reads_unexpected": unexpected,
        "reads_refused_expected": dict(sorted(books.refused.items())),
        "reads_quarantined_counted": dict(sorted(c.reads_quarantined.items())),
        "messages_quarantined_expected": books.quarantined_messages,
        "messages_quarantined_counted": c.quarantined,
        "quarantine_rows": quarantine_rows,
        "messages_acked": c.messages_acked,
        "passages_stored": passages,
        "reads_partitions": partitions,
        "db_reconnects": c.db_reconnects,
        "seconds": round(seconds, 1),
    }
    assert c.messages_acked == published, figures
    assert missing == 0, figures
    assert unexpected == 0, figures
    assert stored == len(expected), figures
    assert c.reads_quarantined == books.refused, figures
    assert c.quarantined == books.quarantined_messages == quarantine_rows, figures
    return figures
