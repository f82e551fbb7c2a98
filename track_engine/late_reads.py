"""Late reads: which stored passages they join, and which stored rows a refold replaces.

A passage is stored once the watermark is one gap past its last read, but a read may come
later than that: a batch the broker redelivers after an engine crash arrives after its ack
wait (30–60 s on a clustered broker). Folded on its own it would become a second passage
beside the stored one. So the engine keeps the reads of each passage it stored (closed by the
gap, not evicted for length) for ``allowed_lateness_s`` of event time more, with the passage's
first and last read time and read count; a fold then pulls in the stored passages its due reads
can join (:func:`touched`) and refolds them together, and the refolded passages replace the
stored ones (:func:`replacements`). Pure numpy and pandas; the engine owns the state.

Reads are folded with repeats dropped, so a redelivered batch whose reads are already held
changes no count: its refold gives the same passages, and :func:`replacements` writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

PASSAGE_KEY = ["tag_id", "reader_id", "first_at_us"]


@dataclass(frozen=True, slots=True)
class Spans:
    """The (tag, reader) groups of the reads due for folding, each with its time span."""

    keys: pd.Index
    lo_us: NDArray[np.int64]
    hi_us: NDArray[np.int64]


def spans(due_key: NDArray[np.int64], due_at_us: NDArray[np.int64]) -> Spans:
    """Group the reads about to be folded by key (tag, reader), with each group's span."""
    group, keys = pd.factorize(due_key, sort=False)
    lo = np.full(len(keys), np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(len(keys), np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(lo, group, due_at_us)
    np.maximum.at(hi, group, due_at_us)
    return Spans(pd.Index(keys), lo, hi)


def touched(
    due: Spans,
    held_key: NDArray[np.int64],
    held_first_us: NDArray[np.int64],
    held_last_us: NDArray[np.int64],
    *,
    gap_us: int,
) -> NDArray[np.bool_]:
    """Which held passages reads due for folding may join.

    ``held_*`` are per held passage: its (tag, reader) key and its first and last read time;
    ``due``: the due reads' groups (:func:`spans`). A held passage is touched when a due group
    of the same key reaches within ``gap_us`` of it (its span overlaps the passage widened by
    one gap on each side). Pulling in a passage the reads then do not join costs a refold,
    nothing else: the fold gives it back unchanged.
    """
    out = np.zeros(held_key.shape[0], dtype=bool)
    if not held_key.shape[0] or not len(due.keys):
        return out
    index = due.keys.get_indexer(pd.Index(held_key))
    hit = index >= 0
    j = index[hit]
    out[hit] = (due.lo_us[j] <= held_last_us[hit] + gap_us) & (
        due.hi_us[j] >= held_first_us[hit] - gap_us
    )
    return out


def replacements(folded: pd.DataFrame, reopened: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The passages to write and the stored passages to retire after a refold.

    ``folded``: the passages a fold closed (``tag_id, reader_id, first_at_us, read_count``
    among their columns); ``reopened``: the stored passages it pulled in (those four columns,
    one row each). A folded passage equal to a reopened one in key and read count holds the
    same reads (reads are only ever added), so it is not written again. A reopened passage
    whose key a folded one keeps is updated in place by the write; the others were merged
    into a passage with another key (a late read before the first, or two joined) and retire.
    """
    if reopened.empty:
        return folded, reopened
    # Reopened passages are few (the late reads' own): sets of their keys, and only the
    # folded passages of the same tags compared with them, beat pandas' multi-key joins.
    old = set(
        zip(
            reopened["tag_id"].tolist(),
            reopened["reader_id"].tolist(),
            reopened["first_at_us"].astype("int64").tolist(),
            reopened["read_count"].astype("int64").tolist(),
            strict=True,
        )
    )
    near = np.flatnonzero(folded["tag_id"].isin({k[0] for k in old}).to_numpy())
    candidates = list(
        zip(
            folded["tag_id"].to_numpy()[near].tolist(),
            folded["reader_id"].to_numpy()[near].tolist(),
            folded["first_at_us"].to_numpy()[near].tolist(),
            folded["read_count"].to_numpy()[near].tolist(),
            strict=True,
        )
    )
    unchanged = np.zeros(len(folded), dtype=bool)
    unchanged[near] = [c in old for c in candidates]
    kept_keys = {c[:3] for c in candidates}
    retire = np.array([k[:3] not in kept_keys for k in old], dtype=bool)
    old_keys = pd.DataFrame([k[:3] for k in old], columns=PASSAGE_KEY)
    return (
        folded.loc[~unchanged].reset_index(drop=True),
        old_keys.loc[retire].reset_index(drop=True),
    )


def passage_of(
    read_key: NDArray[np.int64],
    read_at_us: NDArray[np.int64],
    passage_key: NDArray[np.int64],
    first_at_us: NDArray[np.int64],
    last_at_us: NDArray[np.int64],
) -> NDArray[np.intp]:
    """Index of the stored passage each read lies in (same key, first ≤ time ≤ last), or -1.

    Stored passages of one key never overlap (a fold makes one passage of reads within a gap),
    so the passage starting last at or before a read is the only one it can lie in.
    """
    out = np.full(read_key.shape[0], -1, dtype=np.intp)
    if not read_key.shape[0] or not passage_key.shape[0]:
        return out
    reads = pd.DataFrame(
        {"key": read_key, "t": read_at_us, "i": np.arange(read_key.shape[0])}
    ).sort_values("t", kind="stable")
    passages = pd.DataFrame(
        {"key": passage_key, "t": first_at_us, "p": np.arange(passage_key.shape[0])}
    ).sort_values("t", kind="stable")
    match = pd.merge_asof(reads, passages, on="t", by="key", direction="backward")
    found = match["p"].notna().to_numpy()
    p = match["p"].to_numpy()[found].astype(np.intp)
    i = match["i"].to_numpy()[found]
    inside = match["t"].to_numpy()[found] <= last_at_us[p]
    out[i[inside]] = p[inside]
    return out
