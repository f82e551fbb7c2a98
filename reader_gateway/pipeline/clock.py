"""Per-reader clock offsets, estimated from the reads themselves (pure, no clock read)."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping


class ClockEstimator:
    """Per-reader clock offset: the median of recent (reader time - receive time) samples.

    One sample per reader per received message or chunk: the newest read time in it minus the
    time the gateway received it. The newest read is the one the reader sent last, so that
    sample carries the least buffering delay; what is left is transmission latency (ms), which
    the median does not remove but which is far below the offsets worth correcting (seconds).
    The median ignores the odd sample from a message that sat in a queue or a corrupt clock.
    Until ``min_samples`` are in, the surveyed offset (or 0) is used.
    """

    def __init__(
        self,
        surveyed_s: Mapping[str, float] | None = None,
        *,
        window: int = 64,
        min_samples: int = 8,
        enabled: bool = True,
    ) -> None:
        self.surveyed_us = {k: round(v * 1e6) for k, v in (surveyed_s or {}).items()}
        self.window = window
        self.min_samples = min_samples
        self.enabled = enabled
        self._samples: dict[str, deque[int]] = {}
        self._estimate_us: dict[str, int] = {}

    def observe(self, reader_id: str, sample_us: int) -> None:
        """Add one (reader time - receive time) sample in microseconds."""
        if not self.enabled:
            return
        samples = self._samples.get(reader_id)
        if samples is None:
            samples = self._samples[reader_id] = deque(maxlen=self.window)
        samples.append(sample_us)
        if len(samples) >= self.min_samples:
            self._estimate_us[reader_id] = round(statistics.median(samples))

    def offset_us(self, reader_id: str) -> int:
        """Current offset of the reader's clock (reader minus true time), microseconds."""
        estimate = self._estimate_us.get(reader_id)
        return estimate if estimate is not None else self.surveyed_us.get(reader_id, 0)

    def offsets_s(self) -> dict[str, float]:
        """Current offset of every reader known by survey or estimate, in seconds."""
        keys = set(self.surveyed_us) | set(self._estimate_us)
        return {k: self.offset_us(k) / 1e6 for k in sorted(keys)}
