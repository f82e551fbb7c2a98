"""Integer codes for tag and reader ids, so the engine's hot path never hashes strings twice.

Every read arrives with its tag and reader as Python strings. The engine keeps its open
passages as numeric columns (a few bytes a read instead of two string objects), groups them
by integer key and sorts integers; strings come back only for what it writes (passages,
alerts). An :class:`Interner` hands out the codes: one hash table lookup per *distinct* id in
a micro-batch (``pd.factorize`` first collapses the repeats in C), never one per read.

Codes of ids that are no longer in use are reclaimed by :meth:`Interner.compact`, so a city
whose tags come and go does not grow the table without bound.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray


class Interner:
    """A two-way mapping between strings and dense int64 codes ``0 … len - 1``."""

    def __init__(self) -> None:
        self._code: dict[str, int] = {}
        self._names: list[str] = []

    def __len__(self) -> int:
        return len(self._names)

    def codes(self, values: NDArray[np.object_] | pd.Series) -> NDArray[np.int64]:
        """The code of each value, assigning new codes to ids not seen before."""
        local, uniques = pd.factorize(np.asarray(values, dtype=object))
        code = self._code
        names = self._names
        mapped = np.empty(len(uniques), dtype=np.int64)
        for i, name in enumerate(uniques.tolist()):
            c = code.get(name)
            if c is None:
                c = code[name] = len(names)
                names.append(name)
            mapped[i] = c
        result: NDArray[np.int64] = mapped[local]
        return result

    def names(self, codes: NDArray[np.integer]) -> NDArray[np.object_]:
        """The strings of ``codes``."""
        table = np.asarray(self._names, dtype=object) if self._names else np.zeros(0, object)
        out: NDArray[np.object_] = table[np.asarray(codes, dtype=np.int64)]
        return out

    def name(self, code: int) -> str:
        """The string of one code."""
        return self._names[code]

    def compact(self, in_use: NDArray[np.integer]) -> NDArray[np.int64]:
        """Forget every code not in ``in_use``; returns ``remap`` with ``new = remap[old]``.

        Codes keep their relative order. Old codes that were forgotten map to -1.
        """
        keep = np.unique(np.asarray(in_use, dtype=np.int64))
        remap = np.full(len(self._names), -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep), dtype=np.int64)
        self._names = [self._names[int(c)] for c in keep]
        self._code = {name: i for i, name in enumerate(self._names)}
        return remap
