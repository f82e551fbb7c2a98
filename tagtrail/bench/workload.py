"""A synthetic read workload: tags passing readers, as columns and as active-tag frames.

Each passage is one tag going past one reader: ``reads_per_passage`` reads 200 ms apart on
two antennas, the RSSI rising to a peak and falling again (a parabola in dB, plus noise), so
the engine's closest-approach fit has real work to do. Passages start at a steady nominal
rate in event time; the tag of passage ``i`` is ``i * 7919 mod tags`` so a tag comes back
only after every other tag has passed once, which keeps every read's natural key
``(tag, read_at, reader, antenna)`` unique (nothing is silently skipped as a duplicate).

The frames are TagTrail active-tag frames (fixed 32 bytes, reader id and reader time inside)
built for whole columns by :func:`simulators.wire_columns.active_frames`, which is tested byte
for byte against the gateway's own encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simulators.wire_columns import active_frames

_TAG_STRIDE = 7919  # prime: passage i -> tag (i * stride) mod tags visits every tag in turn
_TAG_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: a bijection of uint64, so ids look random
_HEX = np.frombuffer(b"0123456789ABCDEF", np.uint8)


@dataclass(frozen=True, slots=True)
class Workload:
    """Shape of the traffic: how many tags and readers, and how fast event time runs."""

    tags: int = 1_000_000
    readers: int = 2_000
    nominal_reads_per_s: float = 100_000.0
    reads_per_passage: int = 15
    read_interval_ms: int = 200
    seed: int = 1


def tag_values(index: NDArray[np.int64]) -> NDArray[np.uint64]:
    """The 64-bit active-tag id of tag number ``index``."""
    return (index.astype(np.uint64) + np.uint64(1)) * _TAG_MIX


def tag_hex(values: NDArray[np.uint64]) -> NDArray[np.object_]:
    """Tag ids as the gateway reports them: 16 upper-case hex digits."""
    raw = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    digits = np.empty((len(values), 16), np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    return digits.view("S16").ravel().astype("U16").astype(object)


def reader_name(number: NDArray[np.int64]) -> NDArray[np.object_]:
    """Reader ids as the gateway reports active-tag readers: ``AT-`` + 8 hex digits."""
    names = np.array([f"AT-{int(n):08X}" for n in np.unique(number)], dtype=object)
    return names[np.searchsorted(np.unique(number), number)]


def make_reads(
    workload: Workload, *, first_passage: int, passages: int, t0_us: int
) -> pd.DataFrame:
    """Reads of passages ``first_passage …`` (sorted by read time), engine frame columns.

    Columns: ``tag`` (uint64), ``reader`` (int64 number), ``read_at_us`` (whole ms),
    ``antenna``, ``rssi_dbm``.
    """
    w = workload
    rng = np.random.default_rng([w.seed, first_passage])
    index = np.arange(first_passage, first_passage + passages, dtype=np.int64)
    start_us = t0_us + (index * w.reads_per_passage * 1e6 / w.nominal_reads_per_s).astype(np.int64)
    start_us -= start_us % 1000
    k = np.arange(w.reads_per_passage)
    mid = (w.reads_per_passage - 1) / 2
    read_at = start_us[:, None] + k[None, :] * w.read_interval_ms * 1000
    peak = rng.uniform(-55.0, -40.0, size=(passages, 1))
    rssi = peak - 0.35 * (k[None, :] - mid) ** 2 + rng.normal(0.0, 1.5, (passages, len(k)))
    frame = pd.DataFrame(
        {
            "tag": np.repeat(tag_values((index * _TAG_STRIDE) % w.tags), len(k)),
            "reader": np.repeat(rng.integers(1, w.readers + 1, size=passages), len(k)),
            "read_at_us": read_at.ravel(),
            "antenna": np.tile(np.where(k <= mid, 1, 2), passages),
            "rssi_dbm": np.clip(np.round(rssi.ravel()), -100, -20),
        }
    )
    return frame.sort_values("read_at_us", kind="stable").reset_index(drop=True)


def reader_seq(reader: NDArray[np.int64], start: dict[int, int]) -> NDArray[np.int64]:
    """Per-reader frame counters continuing from ``start`` (updated in place)."""
    order = np.argsort(reader, kind="stable")
    sorted_reader = reader[order]
    first = np.flatnonzero(np.r_[True, sorted_reader[1:] != sorted_reader[:-1]])
    counts = np.diff(np.r_[first, len(reader)])
    rank = np.arange(len(reader)) - np.repeat(first, counts)
    base = np.array([start.get(int(r), 0) for r in sorted_reader[first]], dtype=np.int64)
    seq = np.empty(len(reader), np.int64)
    seq[order] = np.repeat(base, counts) + rank
    for r, b, c in zip(sorted_reader[first].tolist(), base.tolist(), counts.tolist(), strict=True):
        start[r] = b + c
    return seq


def frames(reads: pd.DataFrame, seq: NDArray[np.int64]) -> bytes:
    """The reads as consecutive 32-byte active-tag frames, in the frame's row order."""
    tag = reads["tag"].to_numpy(np.uint64)
    mat = tag.astype(">u8").view(np.uint8).reshape(-1, 8)
    rows = active_frames(
        device_id=reads["reader"].to_numpy(np.int64),
        seq=seq,
        read_at_us=reads["read_at_us"].to_numpy(np.int64),
        tag=(mat, np.full(len(tag), 8, np.int64)),
        rssi_dbm=reads["rssi_dbm"].to_numpy(np.float64),
        antenna=reads["antenna"].to_numpy(np.int64),
    )
    data, _ = rows.build()
    return data.tobytes()


def engine_rows(reads: pd.DataFrame, seq: NDArray[np.int64]) -> pd.DataFrame:
    """The same reads as the ``reads`` table stores them (for the raw COPY reference)."""
    return pd.DataFrame(
        {
            "tag_id": tag_hex(reads["tag"].to_numpy(np.uint64)),
            "read_at_us": reads["read_at_us"].to_numpy(np.int64),
            "reader_id": reader_name(reads["reader"].to_numpy(np.int64)),
            "antenna": reads["antenna"].to_numpy(np.int64),
            "rssi_dbm": reads["rssi_dbm"].to_numpy(np.float64),
            "reader_seq": seq,
        }
    )
