"""The rows a micro-batch's reads are stored as: plain columns, no database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class ReadRows:
    """Reads in ``reads`` column order, readers and gateways dictionary-encoded."""

    tag_id: NDArray[np.object_]
    read_at_us: NDArray[np.int64]
    reader_code: NDArray[np.integer]
    reader_names: Sequence[str]
    antenna: NDArray[np.integer]
    rssi_dbm: NDArray[np.floating]
    reader_seq: NDArray[np.int64]
    gateway_code: NDArray[np.integer]
    gateway_names: Sequence[str]

    def __len__(self) -> int:
        return int(self.read_at_us.shape[0])

    @classmethod
    def from_frame(cls, reads: pd.DataFrame, *, gateway_id: str) -> ReadRows:
        """Reads from a frame (columns tag_id, read_at_us, reader_id, antenna, rssi_dbm,
        reader_seq), all from one gateway."""
        reader_code, reader_names = pd.factorize(reads["reader_id"])
        return cls(
            tag_id=reads["tag_id"].to_numpy(dtype=object),
            read_at_us=reads["read_at_us"].to_numpy(dtype=np.int64),
            reader_code=reader_code,
            reader_names=[str(r) for r in reader_names],
            antenna=reads["antenna"].to_numpy(),
            rssi_dbm=reads["rssi_dbm"].to_numpy(),
            reader_seq=reads["reader_seq"].to_numpy(dtype=np.int64),
            gateway_code=np.zeros(len(reads), dtype=np.int32),
            gateway_names=[gateway_id],
        )
