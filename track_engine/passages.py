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

from collections.abc import Mapping

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


def fold_passages(
    reads: pd.DataFrame,
    *,
    gap_s: float = 10.0,
    antenna_direction: Mapping[str, Mapping[int, str]] | None = None,
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

    # Sort on every column so that duplicate timestamps still land in one canonical order:
    # the result must not depend on the order in which the batches arrived. Tags and readers
    # are sorted as integer codes numbered in string order (``factorize(sort=True)``), which
    # orders rows exactly as the strings would, without comparing strings row by row.
    tag_code, tag_names = pd.factorize(reads["tag_id"], sort=True)
    reader_code, reader_names = pd.factorize(reads["reader_id"], sort=True)
    key = tag_code.astype(np.int64) * max(len(reader_names), 1) + reader_code
    t_in = reads["read_at_us"].to_numpy(dtype=np.int64)
    rssi_in = reads["rssi_dbm"].to_numpy(dtype=np.float64)
    antenna_in = reads["antenna"].to_numpy(dtype=np.int64)
    order = np.lexsort((rssi_in, antenna_in, t_in, key))
    key = key[order]
    t_us = t_in[order]
    rssi = rssi_in[order]
    antenna = antenna_in[order]

    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = (key[1:] != key[:-1]) | ((t_us[1:] - t_us[:-1]) > round(gap_s * _US_PER_S))
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, len(order)))
    group = np.repeat(np.arange(len(starts)), counts)
    group_tag = tag_code[order[starts]]
    group_reader = reader_code[order[starts]]
    tags = np.asarray(tag_names, dtype=object)
    readers = np.asarray(reader_names, dtype=object)

    closest_us = _closest_approach_us(t_us, rssi, starts, counts, group)
    out = pd.DataFrame(
        {
            "tag_id": tags[group_tag],
            "reader_id": readers[group_reader],
            "first_at_us": t_us[starts],
            "last_at_us": t_us[starts + counts - 1],
            "closest_at_us": closest_us,
            "peak_rssi_dbm": np.maximum.reduceat(rssi, starts),
            "read_count": counts.astype(np.int64),
            "direction": _directions(
                readers[reader_code[order]],
                antenna,
                t_us,
                group,
                len(starts),
                antenna_direction,
            )
            if antenna_direction
            else np.full(len(starts), "", dtype=object),
        }
    )
    # Sorted by tag_id, closest_at_us, reader_id (codes are in string order).
    final = np.lexsort((group_reader, closest_us, group_tag))
    return out.iloc[final].reset_index(drop=True)


def group_keys(tag_id: pd.Series, reader_id: pd.Series) -> NDArray[np.uint64]:
    """A 64-bit hash per read of its (tag, reader): which passage group the read belongs to.

    Only used to *select* reads; a collision merely selects another group's reads too, and
    :func:`fold_passages` still groups by the real ids, so results never depend on it.
    """
    tags = pd.util.hash_array(np.asarray(tag_id, dtype=object))
    readers = pd.util.hash_array(np.asarray(reader_id, dtype=object))
    with np.errstate(over="ignore"):
        mixed: NDArray[np.uint64] = tags * np.uint64(0x9E3779B97F4A7C15) + readers
    return mixed


def due_groups(
    keys: NDArray[np.uint64], read_at_us: NDArray[np.int64], *, before_us: int
) -> NDArray[np.bool_]:
    """Mask of the reads whose (tag, reader) group has a read before ``before_us``.

    With ``before_us = watermark - gap`` these are the only groups in which a passage can be
    closed: a closed passage's last read, and so its first, is older than that; a passage
    open longer than ``max_passage_s`` (≥ gap) started before it too. Folding just these groups
    gives the same closed passages as folding every pending read, because groups fold
    independently — the engine's cost per micro-batch then follows what closes, not what is
    pending.
    """
    early = read_at_us < before_us
    if not early.any():
        return early
    due: NDArray[np.bool_] = pd.Series(keys).isin(np.unique(keys[early])).to_numpy()
    return due


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
    reader: NDArray[np.object_],
    antenna: NDArray[np.int64],
    t_us: NDArray[np.int64],
    group: NDArray[np.intp],
    n_groups: int,
    antenna_direction: Mapping[str, Mapping[int, str]] | None,
) -> NDArray[np.object_]:
    """Direction per passage from the headings of the antennas heard first and last."""
    out = np.full(n_groups, "", dtype=object)
    if not antenna_direction:
        return out
    lookup = pd.DataFrame(
        [
            (r, int(a), h)
            for r, by_antenna in antenna_direction.items()
            for a, h in by_antenna.items()
        ],
        columns=["reader_id", "antenna", "heading"],
    )
    frame = pd.DataFrame({"reader_id": reader, "antenna": antenna, "t": t_us, "group": group})
    frame = frame.merge(lookup, on=["reader_id", "antenna"], how="inner")
    if frame.empty:
        return out
    # Mean read time per heading, not the single first/last read: one stray read on the
    # wrong antenna must not flip the direction.
    mean_t = frame.groupby(["group", "heading"], sort=True)["t"].mean().reset_index()
    mean_t = mean_t.sort_values(["group", "t", "heading"], kind="mergesort")
    first = mean_t.groupby("group")["heading"].first()
    last = mean_t.groupby("group")["heading"].last()
    differs = first != last
    idx = first.index[differs].to_numpy(dtype=np.intp)
    out[idx] = (first[differs] + "->" + last[differs]).to_numpy(dtype=object)
    return out
