"""Tags and readers as integer codes, and what the engine keeps per code: the heading each
antenna of a two-antenna reader faces, and the watched tags.

This is the engine's only mutable memory besides :class:`~track_engine.core.state.EngineState`,
and it needs no rollback: codes handed out stay valid (the interners only grow between
compactions, which run outside any transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.core.state import EngineState
from track_engine.interning import Interner
from track_engine.memory import OpenReads
from track_engine.passages import antenna_headings, heading_of_reads

# The tag table is compacted (codes of tags with no open read forgotten) when it holds this
# many more tags than are open: bounded memory without rebuilding it on every fold.
COMPACT_SLACK = 500_000
WATCH_COLUMNS = ["tag_id", "watch_id", "bike_id", "kind"]


@dataclass(frozen=True, slots=True)
class Watches:
    """Watched tags: one row per (tag, watch) with tag_id, watch_id, bike_id, kind, tag_code;
    and the distinct tag codes."""

    frame: pd.DataFrame
    codes: NDArray[np.int64]

    @staticmethod
    def empty() -> Watches:
        """No tag watched."""
        return Watches(pd.DataFrame(columns=[*WATCH_COLUMNS, "tag_code"]), np.zeros(0, np.int64))


class Coding:
    """The engine's code tables: tags, readers, antenna headings and watched tags."""

    def __init__(self) -> None:
        self.tags = Interner()
        self.readers = Interner()
        self.watches = Watches.empty()
        self.antenna_direction: dict[str, dict[int, str]] = {}
        self.heading_table = np.full((1, 33), -1, dtype=np.int64)
        self.heading_labels: list[str] = []

    def set_watches(self, watched: pd.DataFrame) -> None:
        """Replace the watch list (columns tag_id, watch_id, bike_id, kind)."""
        codes = (
            self.tags.codes(watched["tag_id"].to_numpy(dtype=object))
            if len(watched)
            else np.zeros(0, np.int64)
        )
        frame = watched.assign(tag_code=codes)
        self.watches = Watches(frame, np.unique(frame["tag_code"].to_numpy(dtype=np.int64)))

    def set_antenna_headings(self, headings: Mapping[str, list[float]]) -> None:
        """Which way each antenna of a two-antenna reader faces (degrees, port 1 first)."""
        self.antenna_direction = {
            reader_id: {port + 1: f"{h:g}" for port, h in enumerate(degrees)}
            for reader_id, degrees in headings.items()
        }
        self._update_heading_table()

    def _update_heading_table(self) -> None:
        names = self.readers.names(np.arange(len(self.readers)))
        self.heading_table, self.heading_labels = antenna_headings(names, self.antenna_direction)

    def reader_codes(self, names: NDArray[np.object_] | list[str]) -> NDArray[np.int64]:
        """Codes of reader ids; a wire batch's ``readers`` are distinct, so no factorize."""
        known = len(self.readers)
        if isinstance(names, list):
            codes = self.readers.codes_of_distinct(names)
        else:
            codes = self.readers.codes(names)
        if len(self.readers) != known:  # a reader heard for the first time
            self._update_heading_table()
        return codes

    def keys(self, reads: OpenReads) -> NDArray[np.int64]:
        """One integer per (tag, reader) group, valid while no reader is added."""
        key: NDArray[np.int64] = reads.tag * (len(self.readers) + 1) + reads.reader
        return key

    def headings_of(self, reads: OpenReads) -> NDArray[np.int64] | None:
        """Heading index of each read (None: no two-antenna reader known)."""
        if not self.heading_labels:
            return None
        return heading_of_reads(self.heading_table, reads.reader, reads.antenna)

    def compact(self, state: EngineState) -> EngineState:
        """Forget the codes of tags with nothing open (bounded memory as tags come and go);
        returns the state with its codes remapped (or as it was: nothing to forget)."""
        if len(self.tags) < len(self.watches.codes) + state.held_reads + state.pending_reads + (
            COMPACT_SLACK
        ):
            return state
        # The reads of micro-batches not folded yet are in use too: forgotten here, their
        # codes pointed at other tags or past the table (a 1,000,000-read batch, not folded
        # before the next one came, stopped the engine with an IndexError in names()).
        state = replace(state, open=state.pending(), fresh=())
        in_use = np.concatenate(
            [state.open.tag, *(h.reads.tag for h in state.held), self.watches.codes]
        )
        if len(self.tags) - np.unique(in_use).shape[0] < COMPACT_SLACK:
            return state
        remap = self.tags.compact(in_use)
        o = state.open
        frame = self.watches.frame
        self.watches = Watches(
            frame.assign(tag_code=remap[frame["tag_code"].to_numpy()]), remap[self.watches.codes]
        )
        # Alert de-duplication keys hold watch ids, not tag codes: nothing to remap there.
        return replace(
            state,
            open=OpenReads(remap[o.tag], o.reader, o.antenna, o.rssi_dbm, o.read_at_us),
            held=tuple(
                replace(h, reads=replace(h.reads, tag=remap[h.reads.tag])) for h in state.held
            ),
        )
