"""Reader streams written to files with whole-column encoders, a group of readers at a time.

The same messages as :func:`simulators.emit.reader_messages` (order, counters, round ends,
heartbeats, line noise — checked by ``tests/simulators/test_wire_columns.py``), built by
:mod:`simulators.wire_columns` instead of one gateway encoder call per read. A reader's file
depends only on that reader's reads, so readers are encoded in groups (one group per task,
any process) and each group writes its own readers' files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simulators import wire_columns as wc
from simulators.emit import READER_UTC_OFFSET_MINUTES, device_ids, garbage
from simulators.readers import SERIAL_PROTOCOLS, SimReader
from simulators.wire_columns import Table

BATCH_ROWS = 400_000


@dataclass(frozen=True, eq=False)
class EmitTables:
    """Per-reader and per-tag text every group needs; reader index = rank in sorted ids."""

    reader_ids: list[str]
    protocol: NDArray[np.object_]
    device: NDArray[np.int64]
    host: Table
    epc: Table
    b64: Table
    hex: Table
    seed: int
    garbage_prob: float
    heartbeat_s: float = 60.0

    @staticmethod
    def build(
        readers: list[SimReader], tag_names: list[str], *, seed: int, garbage_prob: float
    ) -> EmitTables:
        """Tables for these readers and tags (tag codes index ``tag_names``)."""
        by_id = {r.reader_id: r for r in readers}
        ids = sorted(by_id)
        devices = device_ids(ids)
        return EmitTables(
            ids, np.array([by_id[r].protocol for r in ids], dtype=object),
            np.array([devices[r] for r in ids], np.int64), wc.json_strings(ids),
            wc.epc_table(tag_names), wc.b64_table(tag_names), wc.hex_table(tag_names),
            seed, garbage_prob,
        )  # fmt: skip


def order_reads(reads: pd.DataFrame) -> pd.DataFrame:
    """Reads (reader, antenna, tag, rssi_dbm, read_at_us, true_at_us; codes) in each reader's
    sending order: by reader, then true time, ties by the other columns."""
    order = np.lexsort((
        reads["rssi_dbm"].to_numpy(), reads["tag"].to_numpy(), reads["antenna"].to_numpy(),
        reads["read_at_us"].to_numpy(), reads["true_at_us"].to_numpy(), reads["reader"].to_numpy(),
    ))  # fmt: skip
    return reads.iloc[order].reset_index(drop=True)


def write_streams(out: Path, tables: EmitTables, reads: pd.DataFrame) -> Counter[str]:
    """Write the streams of the readers in ``reads`` (already :func:`order_reads`); returns
    messages per protocol."""
    rank = reads["reader"].to_numpy(np.int64)
    counts: Counter[str] = Counter()
    if len(rank) == 0:
        return counts
    start = np.searchsorted(rank, rank)
    seq = np.arange(len(rank)) - start
    proto = tables.protocol[rank]
    for protocol in sorted(set(proto)):
        rows = np.flatnonzero(proto == protocol)
        for batch in _batches(rank[rows]):
            mine = rows[batch]
            flat, lens, owner = _encode(tables, reads.iloc[mine], rank[mine], seq[mine], protocol)
            counts[protocol] += len(lens)
            _write_files(out, tables, protocol, flat, lens, owner)
    return counts


def _batches(rank: NDArray[np.int64]) -> list[slice]:
    """Runs of whole readers of about ``BATCH_ROWS`` rows (a busier reader alone), so that the
    byte matrices of one encoding stay a few hundred MB however many reads a group has."""
    first = np.flatnonzero(np.append(True, rank[1:] != rank[:-1]))
    out, begin = [], 0
    for f in first[1:].tolist():
        if f - begin >= BATCH_ROWS:
            out.append(slice(begin, f))
            begin = f
    out.append(slice(begin, len(rank)))
    return out


def _encode(
    tables: EmitTables,
    reads: pd.DataFrame,
    rank: NDArray[np.int64],
    seq: NDArray[np.int64],
    protocol: str,
) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
    """One protocol's messages: bytes, message lengths, and each message's reader rank."""
    tag = reads["tag"].to_numpy(np.int64)
    ant = reads["antenna"].to_numpy(np.int64)
    rssi = reads["rssi_dbm"].to_numpy(np.float64)
    read_at = reads["read_at_us"].to_numpy(np.int64)
    if protocol == "impinj-iot":
        host = (tables.host[0][rank], tables.host[1][rank])
        epc = (tables.b64[0][tag], tables.b64[1][tag])
        rows = wc.impinj_events(host=host, epc_b64=epc, antenna=ant, rssi_dbm=rssi,
                                read_at_us=read_at)  # fmt: skip
    elif protocol == "zebra-iotc":
        rows = wc.zebra_events(
            id_hex=(tables.hex[0][tag], tables.hex[1][tag]), event_num=seq + 1, antenna=ant,
            rssi_dbm=rssi, read_at_us=read_at, utc_offset_minutes=READER_UTC_OFFSET_MINUTES,
        )  # fmt: skip
    elif protocol == "r2000":
        # A round ends with the reader's last read of each second of reader time; reader
        # time never runs backwards, so a round's reads are contiguous.
        second = read_at // 1_000_000
        new = np.ones(len(rank), bool)
        new[1:] = (rank[1:] != rank[:-1]) | (second[1:] != second[:-1])
        group = np.cumsum(new) - 1
        size = np.bincount(group)
        last = np.append(new[1:], True)
        total = np.where(last, size[group], 0)
        rows = wc.r2000_frames(epc=(tables.epc[0][tag], tables.epc[1][tag]), antenna=ant,
                               rssi_dbm=rssi, round_total=total)  # fmt: skip
    elif protocol == "tagtrail-active":
        rows = wc.active_frames(
            device_id=tables.device[rank], seq=seq, read_at_us=read_at,
            tag=(tables.epc[0][tag], tables.epc[1][tag]), rssi_dbm=rssi, antenna=ant,
        )  # fmt: skip
    elif protocol == "llrp":
        rows = wc.llrp_reports(message_id=seq, epc=(tables.epc[0][tag], tables.epc[1][tag]),
                               antenna=ant, rssi_dbm=rssi, read_at_us=read_at)  # fmt: skip
    else:
        raise ValueError(f"no emitter for protocol {protocol!r}")
    # Serial streams carry line noise; JSON is one MQTT payload per line; LLRP (the
    # reader-to-client TCP stream) has neither noise nor line breaks.
    if protocol in SERIAL_PROTOCOLS:
        rows.prepend(*garbage(tables.seed, rank, seq, np.ones(len(rank), bool),
                              tables.garbage_prob))  # fmt: skip
    elif protocol != "llrp":
        rows.const(b"\n")
    flat, lens = rows.build()
    if protocol == "zebra-iotc":
        true_at = reads["true_at_us"].to_numpy(np.int64)
        return _with_heartbeats(tables, flat, lens, rank, read_at, true_at)
    return flat, lens, rank


def _with_heartbeats(
    tables: EmitTables,
    flat: NDArray[np.uint8],
    lens: NDArray[np.int64],
    rank: NDArray[np.int64],
    read_at: NDArray[np.int64],
    true_at: NDArray[np.int64],
) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
    """Zebra reads with a heartbeat every ``heartbeat_s`` of reader time interleaved, each
    before the first read at or after its true time (as ``reader_messages`` yields them)."""
    step = round(tables.heartbeat_s * 1e6)
    first_row = np.flatnonzero(np.append(True, rank[1:] != rank[:-1]))
    end_row = np.append(first_row[1:], len(rank))
    lo = np.minimum.reduceat(read_at, first_row)
    hi = np.maximum.reduceat(read_at, first_row)
    offset = read_at[first_row] - true_at[first_row]  # reader clock minus true time
    begin = -(-lo // step) * step
    count = np.maximum((hi - begin) // step + 1, 0)
    r = np.repeat(np.arange(len(first_row)), count)
    at = begin[r] + (np.arange(len(r)) - np.repeat(np.cumsum(count) - count, count)) * step
    beat_true = at - offset[r]
    # Position among the reader's reads, from that reader's first row.
    pos = np.empty(len(r), np.int64)
    for k in range(len(first_row)):  # one searchsorted per reader, not per message
        mine = r == k
        span = true_at[first_row[k] : end_row[k]]
        pos[mine] = first_row[k] + np.searchsorted(span, beat_true[mine], side="left")
    beats, beat_lens = _heartbeat_bytes(at)
    # Order: by reader, then position; a heartbeat goes before the read at its position.
    owner = np.concatenate([rank, rank[first_row][r]])
    key_pos = np.concatenate([np.arange(len(rank)), pos])
    key_kind = np.concatenate([np.ones(len(rank), np.int64), np.zeros(len(r), np.int64)])
    key_at = np.concatenate([np.zeros(len(rank), np.int64), at])
    order = np.lexsort((key_at, key_kind, key_pos, owner))
    all_flat = np.concatenate([flat, beats])
    all_lens = np.concatenate([lens, beat_lens])
    starts = np.concatenate([np.cumsum(lens) - lens, len(flat) + np.cumsum(beat_lens) - beat_lens])
    return _gather(all_flat, starts[order], all_lens[order]), all_lens[order], owner[order]


def _heartbeat_bytes(at: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    rows = wc.zebra_heartbeats(at, READER_UTC_OFFSET_MINUTES)
    rows.const(b"\n")
    return rows.build()


def _gather(
    flat: NDArray[np.uint8], starts: NDArray[np.int64], lens: NDArray[np.int64]
) -> NDArray[np.uint8]:
    """The byte ranges ``[start, start + len)`` of ``flat``, one after the other.

    The index is one int64 per byte, so it is built for about ``_GATHER_BYTES`` at a time.
    """
    out = np.empty(int(lens.sum()), np.uint8)
    ends = np.cumsum(lens)
    m0, b0 = 0, 0
    while m0 < len(lens):
        m1 = max(m0 + 1, int(np.searchsorted(ends, b0 + _GATHER_BYTES, side="right")))
        ln = lens[m0:m1]
        local = np.cumsum(ln) - ln
        idx = np.repeat(starts[m0:m1] - local, ln) + np.arange(int(ln.sum()))
        b1 = int(ends[m1 - 1])
        out[b0:b1] = flat[idx]
        m0, b0 = m1, b1
    return out


_GATHER_BYTES = 1 << 24


def _write_files(
    out: Path,
    tables: EmitTables,
    protocol: str,
    flat: NDArray[np.uint8],
    lens: NDArray[np.int64],
    owner: NDArray[np.int64],
) -> None:
    folder = out / "emitted" / protocol
    folder.mkdir(parents=True, exist_ok=True)
    ext = "bin" if protocol in SERIAL_PROTOCOLS or protocol == "llrp" else "jsonl"
    ends = np.cumsum(lens)
    first = np.flatnonzero(np.append(True, owner[1:] != owner[:-1]))
    last = np.append(first[1:], len(owner)) - 1
    for f, last_msg in zip(first.tolist(), last.tolist(), strict=True):
        begin = int(ends[f] - lens[f])
        data = flat[begin : int(ends[last_msg])]
        (folder / f"{tables.reader_ids[owner[f]]}.{ext}").write_bytes(data.tobytes())
