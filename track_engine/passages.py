"""Fold reads into passages: one row per tag per reader visit.

A *passage* is what the route is built from: the tag went past this reader, closest at this
instant. The instant is not the loudest read. RSSI is noisy (shadowing, multipath, 1 dB
quantization) and flat near the closest point, so the loudest of ~15 reads is often a second or
more off. Instead every read of the passage contributes to one fit:

Under log-distance path loss ``rssi = P0 - 10 n log10(d)`` and straight-line motion at constant
speed, the squared distance ``d² = d0² + v² (t - tc)²`` is *exactly* a parabola in time with its
vertex at the closest approach ``tc``. So each read's RSSI is turned into a relative squared
distance ``y = 10 ** ((peak - rssi) / (5 n))`` and a convex parabola is fitted to ``y(t)`` by
weighted least squares. RSSI noise is additive in dB, i.e. multiplicative in ``y``, so the
weights are ``1 / ŷ²`` (relative error); two reweighting rounds with a Huber weight on the dB
residual keep one reflected or clipped read from dragging the vertex. When a passage has fewer
than 3 reads or the fit does not open upwards, the time falls back to the power-weighted
centroid of the reads within a few dB of the peak. All of this runs on grouped sums over the
whole batch (``np.add.reduceat``), never one passage at a time.

Times are int64 UTC microseconds since the epoch, already corrected for the reader's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

READ_COLUMNS = ["tag_id", "reader_id", "antenna", "rssi_dbm", "read_at_us"]
PASSAGE_COLUMNS = [
    "tag_id",
    "reader_id",
    "first_at_us",
    "last_at_us",
    "closest_at_us",
    "peak_rssi_dbm",
    "read_count",
    "direction",
]

_US_PER_S = 1_000_000
# Path-loss exponent used to linearize RSSI into squared distance. The vertex of a symmetric
# curve does not depend on it, so a rough urban value is enough.
_PATH_LOSS_EXPONENT = 2.0
# Huber threshold on the dB residual: reads further off than this lose weight.
_HUBER_DB = 3.0
_IRLS_ROUNDS = 2
# Fallback centroid uses reads within this many dB of the passage's peak.
_CENTROID_TOP_DB = 3.0
# Fitted squared distance is floored at this fraction of the peak read's, so a wild fit
# cannot produce a zero or negative denominator in the next round's weights.
_MIN_REL_SQ_DISTANCE = 0.05


def empty_passages() -> pd.DataFrame:
    """An empty passage frame with the right columns and dtypes."""
    return pd.DataFrame(
        {
            "tag_id": pd.Series([], dtype=object),
            "reader_id": pd.Series([], dtype=object),
            "first_at_us": pd.Series([], dtype=np.int64),
            "last_at_us": pd.Series([], dtype=np.int64),
            "closest_at_us": pd.Series([], dtype=np.int64),
            "peak_rssi_dbm": pd.Series([], dtype=np.float64),
            "read_count": pd.Series([], dtype=np.int64),
            "direction": pd.Series([], dtype=object),
        }
    )


@dataclass(frozen=True, slots=True)
class Fold:
    """Passages folded from integer-coded reads, one entry per passage (see :func:`fold_coded`).

    ``tag`` and ``reader`` are the callers' codes; ``read_passage`` maps each input read to
    the index of its passage, or -1 for a repeat of a read already counted (same tag, reader,
    antenna and time) when repeats are dropped.
    """

    tag: NDArray[np.int64]
    reader: NDArray[np.int64]
    first_at_us: NDArray[np.int64]
    last_at_us: NDArray[np.int64]
    closest_at_us: NDArray[np.int64]
    peak_rssi_dbm: NDArray[np.float64]
    read_count: NDArray[np.int64]
    direction: NDArray[np.object_]
    read_passage: NDArray[np.intp]

    def __len__(self) -> int:
        return int(self.first_at_us.shape[0])


def fold_coded(
    tag: NDArray[np.integer],
    reader: NDArray[np.integer],
    antenna: NDArray[np.integer],
    rssi_dbm: NDArray[np.floating],
    read_at_us: NDArray[np.int64],
    *,
    gap_us: int,
    heading: NDArray[np.integer] | None = None,
    heading_labels: Sequence[str] = (),
    drop_repeats: bool = False,
) -> Fold:
    """Fold reads given as integer codes (tag, reader ≥ 0) into passages, all at once.

    Reads of one (tag, reader) more than ``gap_us`` apart start a new passage; input order
    does not matter. Passages come out ordered by (tag, reader, first read). ``heading`` gives
    per read the index into ``heading_labels`` of the way its antenna faces (-1: unknown);
    the passage direction is then ``"<first>-><last>"`` (see :func:`fold_passages`).
    With ``drop_repeats`` a read whose (tag, reader, antenna, time) was already seen — a
    batch delivered twice — is not counted again.
    """
    n = int(read_at_us.shape[0])
    tag64 = np.asarray(tag, dtype=np.int64)
    reader64 = np.asarray(reader, dtype=np.int64)
    n_readers = int(reader64.max()) + 1 if n else 1
    key = tag64 * n_readers + reader64
    t_in = np.asarray(read_at_us, dtype=np.int64)
    rssi_in = np.asarray(rssi_dbm, dtype=np.float64)
    antenna_in = np.asarray(antenna, dtype=np.int64)
    # Sort on every column so that duplicate timestamps still land in one canonical order:
    # the result must not depend on the order in which the batches arrived.
    order = np.lexsort((rssi_in, antenna_in, t_in, key))
    read_passage = np.full(n, -1, dtype=np.intp)
    if drop_repeats and n > 1:
        k, t, a = key[order], t_in[order], antenna_in[order]
        repeat = np.zeros(n, dtype=bool)
        repeat[1:] = (k[1:] == k[:-1]) & (t[1:] == t[:-1]) & (a[1:] == a[:-1])
        order = order[~repeat]
    key = key[order]
    t_us = t_in[order]
    rssi = rssi_in[order]
    m = int(order.shape[0])

    new_group = np.ones(m, dtype=bool)
    new_group[1:] = (key[1:] != key[:-1]) | ((t_us[1:] - t_us[:-1]) > gap_us)
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, m))
    group = np.repeat(np.arange(len(starts)), counts)
    read_passage[order] = group
    if m == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        return Fold(
            empty_i, empty_i, empty_i, empty_i, empty_i, np.zeros(0), empty_i,
            np.zeros(0, dtype=object), read_passage,
        )  # fmt: skip
    first_read = order[starts]
    direction = np.full(len(starts), "", dtype=object)
    if heading is not None and len(heading_labels):
        direction = _directions(
            np.asarray(heading, dtype=np.int64)[order], t_us, group, len(starts), heading_labels
        )
    return Fold(
        tag=tag64[first_read],
        reader=reader64[first_read],
        first_at_us=t_us[starts],
        last_at_us=t_us[starts + counts - 1],
        closest_at_us=_closest_approach_us(t_us, rssi, starts, counts, group),
        peak_rssi_dbm=np.maximum.reduceat(rssi, starts),
        read_count=counts.astype(np.int64),
        direction=direction,
        read_passage=read_passage,
    )


def fold_passages(
    reads: pd.DataFrame,
    *,
    gap_s: float = 10.0,
    antenna_direction: Mapping[str, Mapping[int, str]] | None = None,
    drop_repeats: bool = False,
) -> pd.DataFrame:
    """Fold reads (``READ_COLUMNS``) into passages (``PASSAGE_COLUMNS``).

    Reads of one (tag, reader) more than ``gap_s`` apart start a new passage. Input order does
    not matter (late and out-of-order reads are sorted in). ``antenna_direction`` maps a reader
    to the heading each antenna faces (``{"R1": {1: "S", 2: "N"}}``); the passage direction is
    then ``"<first>-><last>"``, the headings of the antennas heard earliest and latest on
    average — a tag first heard by the south-facing antenna and last by the north-facing one
    travelled northwards, ``"S->N"``. It is ``""`` when unknown or when only one heading heard.
    The result is sorted by tag_id, closest_at_us.
    """
    missing = [c for c in READ_COLUMNS if c not in reads.columns]
    if missing:
        raise ValueError(f"reads lack columns {missing}")
    if gap_s < 0:
        raise ValueError("gap_s must be >= 0")
    if reads.empty:
        return empty_passages()

    # Tags and readers as integer codes numbered in string order (``factorize(sort=True)``),
    # which orders rows exactly as the strings would, without comparing strings row by row.
    tag_code, tag_names = pd.factorize(reads["tag_id"], sort=True)
    reader_code, reader_names = pd.factorize(reads["reader_id"], sort=True)
    readers = np.asarray(reader_names, dtype=object)
    antenna = reads["antenna"].to_numpy(dtype=np.int64)
    heading = None
    labels: list[str] = []
    if antenna_direction:
        heading, labels = antenna_headings(readers, antenna_direction)
        heading = heading_of_reads(heading, reader_code, antenna)
    fold = fold_coded(
        tag_code,
        reader_code,
        antenna,
        reads["rssi_dbm"].to_numpy(dtype=np.float64),
        reads["read_at_us"].to_numpy(dtype=np.int64),
        gap_us=round(gap_s * _US_PER_S),
        heading=heading,
        heading_labels=labels,
        drop_repeats=drop_repeats,
    )
    out = pd.DataFrame(
        {
            "tag_id": np.asarray(tag_names, dtype=object)[fold.tag],
            "reader_id": readers[fold.reader],
            "first_at_us": fold.first_at_us,
            "last_at_us": fold.last_at_us,
            "closest_at_us": fold.closest_at_us,
            "peak_rssi_dbm": fold.peak_rssi_dbm,
            "read_count": fold.read_count,
            "direction": fold.direction,
        }
    )
    # Sorted by tag_id, closest_at_us, reader_id (codes are in string order).
    final = np.lexsort((fold.reader, fold.closest_at_us, fold.tag))
    return out.iloc[final].reset_index(drop=True)


def antenna_headings(
    readers: Sequence[str] | NDArray[np.object_],
    antenna_direction: Mapping[str, Mapping[int, str]],
) -> tuple[NDArray[np.int64], list[str]]:
    """A table ``[reader code, antenna] -> heading index`` (-1: none) and the heading labels.

    ``readers`` are the reader ids by code; antennas are 1-based (ports up to 32).
    """
    labels: list[str] = []
    index: dict[str, int] = {}
    table = np.full((max(len(readers), 1), 33), -1, dtype=np.int64)
    for code, reader_id in enumerate(readers):
        for port, label in antenna_direction.get(str(reader_id), {}).items():
            if 0 <= int(port) < table.shape[1]:
                table[code, int(port)] = index.setdefault(label, len(index))
    labels = list(index)
    return table, labels


def heading_of_reads(
    table: NDArray[np.int64], reader: NDArray[np.integer], antenna: NDArray[np.integer]
) -> NDArray[np.int64]:
    """Heading index per read from an :func:`antenna_headings` table (-1: unknown)."""
    out = np.full(reader.shape[0], -1, dtype=np.int64)
    ok = (reader < table.shape[0]) & (antenna >= 0) & (antenna < table.shape[1])
    out[ok] = table[reader[ok], antenna[ok]]
    return out


def split_closed(
    passages: pd.DataFrame, *, watermark_us: int, gap_s: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split passages into (closed, still_open) at an event-time watermark.

    A passage is closed once ``watermark_us - last_at_us > gap_s``: no read arriving at or after
    the watermark can extend it any more. The watermark is event time (the newest read time the
    caller has seen, minus its allowed lateness), never the wall clock.
    """
    closed_mask = (watermark_us - passages["last_at_us"].to_numpy(dtype=np.int64)) > round(
        gap_s * _US_PER_S
    )
    closed = passages.loc[closed_mask].reset_index(drop=True)
    still_open = passages.loc[~closed_mask].reset_index(drop=True)
    return closed, still_open


def _closest_approach_us(
    t_us: NDArray[np.int64],
    rssi: NDArray[np.float64],
    starts: NDArray[np.intp],
    counts: NDArray[np.intp],
    group: NDArray[np.intp],
) -> NDArray[np.int64]:
    """Closest-approach time per passage (see the module docstring for the model)."""
    first_us = t_us[starts]
    last_us = t_us[starts + counts - 1]
    peak = np.maximum.reduceat(rssi, starts)
    # Work in seconds relative to the passage's first read: small numbers keep the τ⁴ sums
    # well conditioned, and float64 is exact to well under a microsecond at this range.
    tau = (t_us - first_us[group]).astype(np.float64) / _US_PER_S
    rel_db = peak[group] - rssi
    y = 10.0 ** (rel_db / (5.0 * _PATH_LOSS_EXPONENT))

    weight = 1.0 / y**2
    vertex_s = np.full(len(starts), np.nan)
    convex = np.zeros(len(starts), dtype=bool)
    # τ⁰…τ⁴ once for all rounds (the same values ``tau**k`` gives; only computed once).
    powers = [tau**k for k in range(5)]
    for _ in range(_IRLS_ROUNDS + 1):
        coef, solvable = _grouped_quadratic_fit(powers, y, weight, starts)
        # c > 0: squared distance has a minimum, i.e. RSSI is concave with a peak in time.
        convex = solvable & (coef[:, 2] > 0) & (counts >= 3)
        with np.errstate(divide="ignore", invalid="ignore"):
            vertex_s = np.where(convex, -coef[:, 1] / (2.0 * coef[:, 2]), np.nan)
        fitted = coef[group, 0] + coef[group, 1] * tau + coef[group, 2] * powers[2]
        fitted = np.maximum(fitted, _MIN_REL_SQ_DISTANCE)
        resid_db = 5.0 * _PATH_LOSS_EXPONENT * np.abs(np.log10(y / fitted))
        huber = np.minimum(1.0, _HUBER_DB / np.maximum(resid_db, 1e-12))
        # Groups whose fit failed keep their previous weights rather than garbage ones.
        weight = np.where(convex[group], huber / fitted**2, weight)

    # Fallback: power-weighted centroid of the top reads.
    top = rel_db <= _CENTROID_TOP_DB
    power = np.where(top, 10.0 ** (-rel_db / 10.0), 0.0)
    centroid_s = np.add.reduceat(power * tau, starts) / np.add.reduceat(power, starts)

    span_s = (last_us - first_us).astype(np.float64) / _US_PER_S
    est_s = np.clip(np.where(convex, vertex_s, centroid_s), 0.0, span_s)
    closest: NDArray[np.int64] = first_us + np.rint(est_s * _US_PER_S).astype(np.int64)
    clipped: NDArray[np.int64] = np.minimum(np.maximum(closest, first_us), last_us)
    return clipped


def _grouped_quadratic_fit(
    powers: list[NDArray[np.float64]],
    y: NDArray[np.float64],
    weight: NDArray[np.float64],
    starts: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Weighted least-squares ``y ≈ a + b τ + c τ²`` per contiguous group, all groups at once.

    ``powers`` holds τ⁰…τ⁴. Returns (coef of shape (G, 3) as a, b, c; solvable mask). Groups
    whose normal equations are singular (fewer than 3 distinct times) get zeros and ``False``.
    """
    weighted = [weight * powers[k] for k in range(5)]
    s = [np.add.reduceat(w, starts) for w in weighted]
    r = [np.add.reduceat(weighted[k] * y, starts) for k in range(3)]
    normal = np.stack(
        [
            np.stack([s[0], s[1], s[2]], axis=-1),
            np.stack([s[1], s[2], s[3]], axis=-1),
            np.stack([s[2], s[3], s[4]], axis=-1),
        ],
        axis=-2,
    )
    rhs = np.stack(r, axis=-1)
    # Relative determinant: scale-free test for "times too few or too close to fit a curve".
    scale = s[0] * s[2] * s[4]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_det = np.abs(np.linalg.det(normal)) / scale
    solvable = np.isfinite(rel_det) & (rel_det > 1e-10)
    normal[~solvable] = np.eye(3)
    rhs[~solvable] = 0.0
    coef = np.linalg.solve(normal, rhs[..., None])[..., 0]
    return coef, solvable


def _directions(
    heading: NDArray[np.int64],
    t_us: NDArray[np.int64],
    group: NDArray[np.intp],
    n_groups: int,
    labels: Sequence[str],
) -> NDArray[np.object_]:
    """Direction per passage from the headings of the antennas heard first and last.

    Inputs are per read in fold order; ``heading`` indexes ``labels`` (-1: unknown).
    """
    out = np.full(n_groups, "", dtype=object)
    known = heading >= 0
    if not known.any():
        return out
    g, h, t = group[known], heading[known], t_us[known].astype(np.float64)
    # Mean read time per (passage, heading), not the single first/last read: one stray read on
    # the wrong antenna must not flip the direction.
    n_labels = len(labels)
    pair = g.astype(np.int64) * n_labels + h
    pairs, inverse = np.unique(pair, return_inverse=True)
    mean_t = np.bincount(inverse, weights=t) / np.bincount(inverse)
    pair_group = pairs // n_labels
    pair_heading = pairs % n_labels
    # Per passage, headings ordered by mean time (ties by label, as the labels sort).
    label_rank = np.argsort(np.argsort(np.asarray(labels, dtype=object)))
    order = np.lexsort((label_rank[pair_heading], mean_t, pair_group))
    pg, ph = pair_group[order], pair_heading[order]
    first = np.ones(len(pg), dtype=bool)
    first[1:] = pg[1:] != pg[:-1]
    last = np.ones(len(pg), dtype=bool)
    last[:-1] = pg[1:] != pg[:-1]
    first_h, last_h = ph[first], ph[last]
    groups = pg[first]
    differs = first_h != last_h
    names = np.asarray(labels, dtype=object)
    out[groups[differs]] = names[first_h[differs]] + "->" + names[last_h[differs]]
    return out
