"""Gateway benchmark: decoded reads per second per protocol on one core.

Each protocol decodes a capture of ``reads`` reads built with its own encoder, the way the
gateway meets it: serial protocols as one byte stream cut into 4 KiB chunks (what a busy port
hands over), Impinj both one MQTT message per read and as the NDJSON stream, Zebra one message
per read and as 50-read array batches. The figure is the best of ``repeat`` runs, single thread.
Rows for ``r2000`` and ``llrp`` also run the gateway's own path after decoding (normalize, cut
500-read batches, encode, append to a spool in a temporary directory with one fsync per cut),
to show what decoding leaves for the rest; ``llrp`` also runs whole sessions over loopback TCP
through the LLRP transport.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.protocols import (
    impinj_iot,
    llrp_encode,
    make_decoder,
    r2000,
    tagtrail_active,
    zebra_iotc,
)
from reader_gateway.spool import Spool
from reader_gateway.wire import encode_batch
from tagtrail.bench.gateway_llrp import time_session

_T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
_CHUNK = 4096


@dataclass(frozen=True)
class BenchResult:
    """One protocol's figure."""

    protocol: str
    shape: str
    reads: int
    seconds: float

    @property
    def reads_per_s(self) -> float:
        """Decoded reads per second."""
        return self.reads / self.seconds


def _reads(n: int, seed: int) -> list[tuple[str, int, float, datetime]]:
    rng = np.random.default_rng(seed)
    tags = [f"E280{v:020X}" for v in rng.integers(0, 2**62, size=200)]
    pick = rng.integers(0, len(tags), size=n).tolist()
    ant = rng.integers(1, 5, size=n).tolist()
    rssi = rng.integers(-80, -40, size=n).tolist()
    return [
        (tags[p], a, float(r), _T0 + timedelta(milliseconds=10 * i))
        for i, (p, a, r) in enumerate(zip(pick, ant, rssi, strict=True))
    ]


def _captures(n: int) -> dict[tuple[str, str], list[bytes]]:
    reads = _reads(n, 7)
    r2k = b"".join(r2000.encode_tag_frame(tag_id=t, antenna=a, rssi_dbm=r) for t, a, r, _ in reads)
    active = b"".join(
        tagtrail_active.encode_frame(
            reader_id=42, reader_seq=i, read_at=at, tag_id=t[-16:], rssi_dbm=r, antenna=a
        )
        for i, (t, a, r, at) in enumerate(reads)
    )
    impinj = [
        impinj_iot.encode_tag_inventory_event(
            hostname="r700", tag_id=t, antenna=a, rssi_dbm=r, read_at=at
        )
        for t, a, r, at in reads
    ]
    zebra = [
        zebra_iotc.encode_tag_data_event(
            tag_id=t, antenna=a, rssi_dbm=r, read_at=at, event_num=i, utc_offset_minutes=480
        )
        for i, (t, a, r, at) in enumerate(reads)
    ]
    stream = impinj_iot.encode_stream(impinj)
    llrp, llrp_50 = _llrp_streams(reads)

    def chunks(data: bytes) -> list[bytes]:
        return [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)]

    return {
        ("r2000", "serial stream"): chunks(r2k),
        ("tagtrail-active", "serial stream"): chunks(active),
        ("impinj-iot", "MQTT message per read"): impinj,
        ("impinj-iot-stream", "NDJSON stream"): chunks(stream),
        ("zebra-iotc", "MQTT message per read"): zebra,
        ("llrp", "TCP stream, report per read"): chunks(llrp),
        ("llrp", "TCP stream, 50 tags per report"): chunks(llrp_50),
        ("zebra-iotc", "array of 50"): [
            zebra_iotc.encode_batch(zebra[i : i + 50]) for i in range(0, len(zebra), 50)
        ],
    }


def _llrp_streams(reads: list[tuple[str, int, float, datetime]]) -> tuple[bytes, bytes]:
    """LLRP captures: one TagReportData per RO_ACCESS_REPORT, as the gateway's ROSpec asks
    (N = 1), and 50 per report, as a reader told to report less often sends them."""
    tags = [llrp_encode.TagReport(t, a, int(r), first_seen=at) for t, a, r, at in reads]
    one = b"".join(
        llrp_encode.encode_ro_access_report([tag], message_id=i) for i, tag in enumerate(tags)
    )
    fifty = b"".join(
        llrp_encode.encode_ro_access_report(tags[i : i + 50], message_id=i)
        for i in range(0, len(tags), 50)
    )
    return one, fifty


def _time(protocol: str, chunks: list[bytes], clock: Callable[[], float]) -> tuple[int, float]:
    decoder = make_decoder(protocol)
    start = clock()
    count = 0
    for chunk in chunks:
        count += decoder.decode(chunk, _T0).read_count
    count += decoder.flush(_T0).read_count
    return count, clock() - start


def _time_pipeline(
    chunks: list[bytes], clock: Callable[[], float], protocol: str = "r2000"
) -> tuple[int, float]:
    decoder = make_decoder(protocol)
    norm = Normalizer("gw-bench", shard_count=4, max_batch_reads=500)
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-spool-") as tmp:
        spool = Spool(Path(tmp), max_bytes=1 << 34, segment_bytes=4 << 20)
        reads = 0
        start = clock()
        for chunk in chunks:
            reads += norm.add(decoder.decode(chunk, _T0).reads, reader_id="R1", received_at=_T0)
            if norm.pending_reads >= 500:
                batches = norm.take(now_us=0, force=True, first_batch_seq=spool.next_id)
                spool.append([encode_batch(b) for _, b in batches])
        batches = norm.take(now_us=0, force=True, first_batch_seq=spool.next_id)
        spool.append([encode_batch(b) for _, b in batches])
        elapsed = clock() - start
        spool.close()
    return reads, elapsed


def run_bench(
    *, reads: int = 20_000, repeat: int = 3, formats: frozenset[str] | None = None
) -> list[BenchResult]:
    """Decode each protocol's capture ``repeat`` times; keep the best time of each.

    ``formats`` limits the run to those protocols (None: all). For ``r2000`` and ``llrp`` a
    row also times the path after decoding (normalize, batch, spool); for ``llrp`` one more
    times a whole LLRP session over loopback TCP (:mod:`tagtrail.bench.gateway_llrp`).
    """
    out: list[BenchResult] = []
    captures = {
        key: chunks
        for key, chunks in _captures(reads).items()
        if formats is None or key[0] in formats
    }
    if formats is not None and not captures:
        raise ValueError(f"no benchmark for formats {sorted(formats)}")
    for (protocol, shape), chunks in captures.items():
        best = float("inf")
        count = 0
        for _ in range(repeat):
            count, seconds = _time(protocol, chunks, time.perf_counter)
            best = min(best, seconds)
        if count != reads:
            raise RuntimeError(f"{protocol}: decoded {count} of {reads} reads")
        out.append(BenchResult(protocol, shape, count, best))
    for protocol, shape in (("r2000", "serial stream"), ("llrp", "TCP stream, report per read")):
        if (protocol, shape) in captures:
            chunks = captures[(protocol, shape)]
            runs = [_time_pipeline(chunks, time.perf_counter, protocol) for _ in range(repeat)]
            if any(count != reads for count, _ in runs):
                raise RuntimeError(f"{protocol}: normalized {runs[0][0]} of {reads} reads")
            best = min(seconds for _, seconds in runs)
            out.append(BenchResult(protocol, "decode+normalize+spool", reads, best))
    if ("llrp", "TCP stream, report per read") in captures:
        stream = b"".join(captures[("llrp", "TCP stream, report per read")])
        best = min(time_session(stream, reads) for _ in range(repeat))
        out.append(BenchResult("llrp", "loopback session (transport)", reads, best))
    return out
