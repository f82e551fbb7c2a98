"""Stored passages as the engine's passages frame: the columns and types a query of the
``passages`` table returns them in (times in microseconds) and the frame built from them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_PASSAGE_DTYPES: dict[str, Any] = {
    "first_at_us": np.int64,
    "last_at_us": np.int64,
    "closest_at_us": np.int64,
    "peak_rssi_dbm": np.float32,
    "read_count": np.int32,
}
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


def passages_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Stored passage rows (``PASSAGE_COLUMNS``, times in microseconds) as the engine's
    passages frame."""
    if not rows:
        return pd.DataFrame(rows, columns=PASSAGE_COLUMNS).astype(_PASSAGE_DTYPES)
    # Column by column from the rows: a bike's passages are few, and building the frame
    # from typed columns skips pandas' row inference and a cast.
    tag, reader, first, last, closest, peak, count, direction = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "tag_id": list(tag),
            "reader_id": list(reader),
            "first_at_us": np.array(first, dtype=np.int64),
            "last_at_us": np.array(last, dtype=np.int64),
            "closest_at_us": np.array(closest, dtype=np.int64),
            "peak_rssi_dbm": np.array(peak, dtype=np.float64).astype(np.float32),
            "read_count": np.array(count, dtype=np.int64).astype(np.int32),
            "direction": list(direction),
        }
    )
