"""The engine's state and the values its steps hand back (effects), all immutable.

A step never changes an :class:`EngineState`: it returns a new one. Rolling a failed
micro-batch back is therefore keeping the state object from before it — no field list to
forget a new field in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from track_engine.core.rows import ReadRows
from track_engine.memory import HeldReads, OpenReads


@dataclass(frozen=True, slots=True)
class EngineState:
    """Everything the engine remembers between micro-batches.

    ``open``: reads of passages not closed yet (as of the last fold); ``fresh``: reads of
    micro-batches since the last fold, joined to ``open`` when it runs (one concatenation per
    fold instead of one per micro-batch); ``held``: reads of stored passages that late reads
    may still join, in chunks (one per fold that stored passages). ``folded_at_us`` and
    ``swept_at_us``: the watermarks of the last fold and of the last one that also swept busy
    groups. ``anchor_event_us`` / ``anchor_wall_us``: the newest read time seen and the wall
    clock when it was seen (:meth:`Engine.tick` runs event time on from there).
    ``last_alert_us``: newest alert read time per (watch id, reader code), for de-duplication.
    """

    open: OpenReads = field(default_factory=OpenReads.empty)
    fresh: tuple[OpenReads, ...] = ()
    held: tuple[HeldReads, ...] = ()
    folded_at_us: int = 0
    swept_at_us: int = 0
    watermark_us: int = 0
    anchor_event_us: int = 0
    anchor_wall_us: int = 0
    last_alert_us: Mapping[tuple[int, int], int] = field(default_factory=dict)

    def pending(self) -> OpenReads:
        """Every open read, the fresh ones included."""
        return OpenReads.concat([self.open, *self.fresh])

    @property
    def pending_reads(self) -> int:
        """Reads held in memory for open passages."""
        return len(self.open) + sum(len(f) for f in self.fresh)

    @property
    def held_reads(self) -> int:
        """Reads of stored passages held for late reads to join."""
        return sum(len(h) for h in self.held)

    def with_reads(self, reads: OpenReads, newest_us: int, wall_us: int) -> EngineState:
        """A micro-batch's reads added; event time moved to ``newest_us`` (seen at
        ``wall_us``) if that is later."""
        moved = newest_us > self.anchor_event_us
        return replace(
            self,
            fresh=(*self.fresh, reads),
            anchor_event_us=newest_us if moved else self.anchor_event_us,
            anchor_wall_us=wall_us if moved else self.anchor_wall_us,
            watermark_us=max(self.watermark_us, newest_us),
        )


@dataclass(frozen=True, slots=True)
class Closing:
    """What a fold decided, before it is written: the passages to store (and the stored ones
    they replace), what stays open, and what stays held for late reads."""

    passages: pd.DataFrame
    retire: pd.DataFrame
    still_open: OpenReads
    held: tuple[HeldReads, ...]
    folded_at_us: int
    swept_at_us: int


@dataclass(frozen=True, slots=True)
class FoldRules:
    """The engine's settings a fold depends on (microseconds)."""

    gap_us: int
    max_passage_us: int
    allowed_lateness_us: int
    max_fold_reads: int


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A micro-batch's reads as codes, and the rows its COPY sends (None: no reads)."""

    reads: OpenReads
    rows: ReadRows | None


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert the core decided to raise; storage gives it its id (or refuses a repeat)."""

    watch_id: int
    bike_id: int
    kind: str
    tag_id: str
    reader_id: str
    read_at_us: int


@dataclass(frozen=True, slots=True)
class Alert:
    """A read of a watched tag."""

    alert_id: int
    watch_id: int
    bike_id: int
    kind: str
    tag_id: str
    reader_id: str
    read_at_us: int


@dataclass(slots=True)
class ProcessResult:
    """What one micro-batch did."""

    reads_received: int = 0
    reads_stored: int = 0
    passages_stored: int = 0
    alerts: list[Alert] = field(default_factory=list)
