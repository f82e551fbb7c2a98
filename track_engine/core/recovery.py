"""Recovery: the engine's state rebuilt from what storage holds after a restart.

Reads are committed before passages are, so after a crash the most recent reads are stored
but their passages are not; refolding the last window restores them. Reads of passages that
are stored come back held for late reads, as if the engine had just stored those passages (a
refold with late reads must retire the stored rows it replaces, so it must know them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from track_engine import late_reads
from track_engine.core.coding import Coding
from track_engine.memory import HeldReads, OpenReads


def recovered_reads(
    coding: Coding, reads: Sequence[tuple[Any, ...]], stored: Sequence[tuple[Any, ...]]
) -> tuple[OpenReads, HeldReads]:
    """Stored reads (tag_id, read_at_us, reader_id, antenna, rssi_dbm) split into those of no
    stored passage (open at the crash) and those of the ``stored`` passages (tag_id,
    reader_id, first_at_us, last_at_us, read_count), held for late reads."""
    if not reads:
        return OpenReads.empty(), HeldReads.empty()
    tag, t_us, reader, antenna, rssi = zip(*reads, strict=True)
    coded = OpenReads(
        coding.tags.codes(np.asarray(tag, dtype=object)),
        coding.reader_codes(np.asarray(reader, dtype=object)),
        np.asarray(antenna, dtype=np.int16),
        np.asarray(rssi, dtype=np.float32),
        np.asarray(t_us, dtype=np.int64),
    )
    if not stored:
        return coded, HeldReads.empty()
    s_tag, s_reader, first_us, last_us, count = zip(*stored, strict=True)
    ps = OpenReads(
        coding.tags.codes(np.asarray(s_tag, dtype=object)),
        coding.reader_codes(np.asarray(s_reader, dtype=object)),
        np.zeros(len(stored), np.int16),
        np.zeros(len(stored), np.float32),
        np.asarray(first_us, dtype=np.int64),
    )
    last = np.asarray(last_us, dtype=np.int64)
    of = late_reads.passage_of(
        coding.keys(coded), coded.read_at_us, coding.keys(ps), ps.read_at_us, last
    )
    held = of >= 0
    return coded.take(~held), HeldReads.of_passages(
        coded.take(held), of[held], ps.read_at_us, last, np.asarray(count, dtype=np.int64)
    )
