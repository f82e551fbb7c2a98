"""Folding: which open reads can close now, into which passages, joined with which stored
passages (late reads) — state and reads in, a :class:`~track_engine.core.state.Closing` out.

Pure computation on the engine's memory, no storage: the engine runs it while the COPY of the
micro-batch's reads is under way, and writes its effects afterwards.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine import late_reads
from track_engine.core.coding import Coding
from track_engine.core.state import Closing, EngineState, FoldRules
from track_engine.memory import HeldReads, OpenReads
from track_engine.passages import Fold, empty_passages, fold_coded

# Folding runs when event time has moved on at least this much since the last fold, so a
# stream of small micro-batches does not pay for a fold each: a passage is stored at most this
# much event time after it closed.
FOLD_EVERY_US = 2_000_000
# Busy groups (heard within the last gap) are swept for earlier, closed passages this often.
SWEEP_EVERY_US = 30_000_000


def fold_due(
    state: EngineState,
    coding: Coding,
    rules: FoldRules,
    watermark_us: int | None,
    *,
    every_us: int = FOLD_EVERY_US,
) -> Closing | None:
    """Fold the groups in which a passage can close at ``watermark_us`` (None: all), with
    the stored passages their reads may join (late reads). None when no fold is due yet."""
    if watermark_us is not None and watermark_us - state.folded_at_us < every_us:
        return None  # event time moved on less than that since the last fold
    pending = state.pending()
    folded_at = state.folded_at_us if watermark_us is None else watermark_us
    # Stored passages stay joinable for (at least) the allowed lateness after they closed.
    horizon = folded_at - rules.gap_us - rules.allowed_lateness_us
    held = tuple(h for h in state.held if int(h.last_at_us.max()) >= horizon)
    quiet = Closing(empty_passages(), _no_keys(), pending, held, folded_at, state.swept_at_us)
    if not len(pending):
        return quiet
    key = coding.keys(pending)
    if watermark_us is None:
        due = np.ones(len(pending), dtype=bool)
    else:
        due, swept = due_reads(key, pending.read_at_us, watermark_us, state.swept_at_us, rules)
        quiet = replace(quiet, swept_at_us=watermark_us if swept else state.swept_at_us)
        if not due.any():
            return quiet
    folding = pending.take(due)
    reopened = _no_keys()
    if held:
        held, back = take_touched(held, key[due], folding.read_at_us, coding, rules.gap_us)
        if len(back):
            folding = OpenReads.concat([folding, back.reads])
            reopened = passages_of(back, coding)
    frames, kept, holding = [], [pending.take(~due)], []
    for piece in _pieces(folding, rules.max_fold_reads):
        frame, still, closed = fold_piece(piece, watermark_us, coding, rules)
        frames.append(frame)
        kept.append(still)
        holding.append(closed)
    passages = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    write, retire = late_reads.replacements(passages, reopened)
    closed_held = HeldReads.concat(holding)
    if len(closed_held):
        held = (*held, closed_held)
    return replace(
        quiet, passages=write, retire=retire, still_open=OpenReads.concat(kept), held=held
    )


def after_closing(state: EngineState, closing: Closing, *, gap_us: int) -> EngineState:
    """The state once a fold's passages are stored: what stays open and held, the fold's
    watermarks, and alert de-duplication entries too old to match forgotten."""
    horizon = closing.folded_at_us - 2 * gap_us
    return replace(
        state,
        open=closing.still_open,
        held=closing.held,
        fresh=(),
        folded_at_us=closing.folded_at_us,
        swept_at_us=closing.swept_at_us,
        last_alert_us={k: t for k, t in state.last_alert_us.items() if t >= horizon},
    )


def _no_keys() -> pd.DataFrame:
    return pd.DataFrame(columns=late_reads.PASSAGE_KEY)


def _pieces(folding: OpenReads, max_reads: int) -> list[OpenReads]:
    """Groups fold independently: a large fold (every parked tag evicted at once) goes in
    parts by tag, so that its temporaries stay bounded."""
    parts = -(-len(folding) // max_reads)
    if parts <= 1:
        return [folding]
    return [folding.take(folding.tag % parts == i) for i in range(parts)]


def take_touched(
    held: tuple[HeldReads, ...],
    due_key: NDArray[np.int64],
    due_at_us: NDArray[np.int64],
    coding: Coding,
    gap_us: int,
) -> tuple[tuple[HeldReads, ...], HeldReads]:
    """Split the held chunks into what stays held and the passages due reads may join."""
    spans = late_reads.spans(due_key, due_at_us)
    stay, back = [], []
    readers = len(coding.readers) + 1
    for chunk in held:
        heads = chunk.head
        touched = late_reads.touched(
            spans,
            chunk.reads.tag[heads] * readers + chunk.reads.reader[heads],
            chunk.first_at_us[heads],
            chunk.last_at_us[heads],
            gap_us=gap_us,
        )
        if not touched.any():
            stay.append(chunk)
            continue
        touch = chunk.passage_mask(touched)
        back.append(chunk.take(touch))
        if not touch.all():
            stay.append(chunk.take(~touch))
    return tuple(stay), HeldReads.concat(back)


def passages_of(held: HeldReads, coding: Coding) -> pd.DataFrame:
    """The stored passages ``held`` reads belong to: key and read count, one row each."""
    heads = held.head
    return pd.DataFrame(
        {
            "tag_id": coding.tags.names(held.reads.tag[heads]),
            "reader_id": coding.readers.names(held.reads.reader[heads]),
            "first_at_us": held.first_at_us[heads],
            "read_count": held.read_count[heads],
        }
    )


def fold_piece(
    folding: OpenReads, watermark_us: int | None, coding: Coding, rules: FoldRules
) -> tuple[pd.DataFrame, OpenReads, HeldReads]:
    """Fold whole groups; returns the closed passages, the reads still open and the reads
    of closed passages to hold for late reads."""
    fold = fold_coded(
        folding.tag,
        folding.reader,
        folding.antenna,
        folding.rssi_dbm,
        folding.read_at_us,
        gap_us=rules.gap_us,
        heading=coding.headings_of(folding),
        heading_labels=coding.heading_labels,
        drop_repeats=True,
    )
    # Evict what has been open too long: it is stored as it stands, and its reads
    # leave memory (not held for late reads); later reads of the visit start a new passage.
    too_long = (fold.last_at_us - fold.first_at_us) > rules.max_passage_us
    if watermark_us is None:
        closed = np.ones(len(fold), dtype=bool)
    else:
        closed = ((watermark_us - fold.last_at_us) > rules.gap_us) | too_long
    # Of the folded groups, keep the reads of passages still open (repeats: -1) and hold
    # those of passages closed by the gap.
    passage = fold.read_passage
    counted = passage >= 0
    of = np.maximum(passage, 0)
    keep = counted & ~closed[of]
    hold = counted & closed[of] & ~too_long[of]
    held = HeldReads.of_passages(
        folding.take(hold), passage[hold], fold.first_at_us, fold.last_at_us, fold.read_count
    )
    return passage_frame(fold, closed, coding), folding.take(keep), held


def due_reads(
    key: NDArray[np.int64],
    read_at_us: NDArray[np.int64],
    watermark_us: int,
    swept_at_us: int,
    rules: FoldRules,
) -> tuple[NDArray[np.bool_], bool]:
    """Which open reads to fold now, and whether this fold sweeps the busy groups too.

    A (tag, reader) group is folded when it is *quiet* (its newest read is older than one
    gap: every passage in it can close) or *too long* (its oldest read is older than
    ``max_passage_s``: evicted). A *busy* group — heard within the last gap, its first read
    older than that — may still hold an earlier passage that closed (the tag left and came
    back); those are folded only every ``SWEEP_EVERY_US`` of event time. Bikes parked by a
    reader are busy groups: folding them on every fold made each fold cost every parked
    tag's reads (found by the soak: 20k parked tags stopped the engine at 20k reads/s).
    """
    cutoff = watermark_us - rules.gap_us
    early = read_at_us < cutoff
    if not early.any():
        return early, False
    # One hash pass gives each read its group's index; spans by ufunc.at on those indices
    # and the answer per read by indexing. A groupby, then np.isin over every pending read,
    # took 2.4x as long (this function was a fifth of the worker's time at full load).
    group, keys = pd.factorize(key, sort=False)
    oldest = np.full(len(keys), np.iinfo(np.int64).max, dtype=np.int64)
    newest = np.full(len(keys), np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(oldest, group, read_at_us)
    np.maximum.at(newest, group, read_at_us)
    quiet = newest < cutoff
    too_long = oldest < watermark_us - rules.max_passage_us
    due_group = quiet | too_long
    sweep = watermark_us - swept_at_us >= SWEEP_EVERY_US
    if sweep:
        due_group |= oldest < cutoff
    return due_group[group], sweep


def passage_frame(fold: Fold, which: NDArray[np.bool_], coding: Coding) -> pd.DataFrame:
    """The folded passages ``which`` selects, as a frame with tag and reader ids."""
    return pd.DataFrame(
        {
            "tag_id": coding.tags.names(fold.tag[which]),
            "reader_id": coding.readers.names(fold.reader[which]),
            "first_at_us": fold.first_at_us[which],
            "last_at_us": fold.last_at_us[which],
            "closest_at_us": fold.closest_at_us[which],
            "peak_rssi_dbm": fold.peak_rssi_dbm[which],
            "read_count": fold.read_count[which],
            "direction": fold.direction[which],
        }
    )
