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
        # The names as an object array for vectorised lookups, grown by doubling (rebuilding
        # it from the list on every lookup cost ~2 % of the engine at full load).
        self._table: NDArray[np.object_] = np.empty(0, dtype=object)
        self._filled = 0  # names copied into the table so far

    def __len__(self) -> int:
        return len(self._names)

    def codes(self, values: NDArray[np.object_] | pd.Series) -> NDArray[np.int64]:
        """The code of each value, assigning new codes to ids not seen before."""
        local, uniques = pd.factorize(np.asarray(values, dtype=object))
        mapped: NDArray[np.int64] = self.codes_of_distinct(uniques.tolist())
        result: NDArray[np.int64] = mapped[local]
        return result

    def codes_of_distinct(self, values: list[str]) -> NDArray[np.int64]:
        """The codes of values expected to be distinct (a repeat still gets the same code)."""
        code = self._code
        mapped = np.array([code.get(v, -1) for v in values], dtype=np.int64)
        if len(mapped) and mapped.min() < 0:  # ids seen for the first time
            names = self._names
            for i in np.flatnonzero(mapped < 0).tolist():
                name = values[i]
                known = code.get(name)
                if known is None:
                    known = code[name] = len(names)
                    names.append(name)
                mapped[i] = known
            self._grow_table()
        return mapped

    def _grow_table(self) -> None:
        """Copy the names added since the last call into the table (doubling it if full)."""
        need = len(self._names)
        if need > len(self._table):
            table = np.empty(max(need, 2 * len(self._table), 1024), dtype=object)
            table[: self._filled] = self._table[: self._filled]
            self._table = table
        self._table[self._filled : need] = self._names[self._filled : need]
        self._filled = need

    def count_distinct(self, codes: NDArray[np.integer]) -> int:
        """How many distinct codes ``codes`` holds (no sort: a mark per code)."""
        seen = np.zeros(len(self._names) + 1, dtype=bool)
        seen[codes] = True
        return int(seen.sum())

    def names(self, codes: NDArray[np.integer]) -> NDArray[np.object_]:
        """The strings of ``codes``."""
        out: NDArray[np.object_] = self._table[np.asarray(codes, dtype=np.int64)]
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
        self._table = np.empty(0, dtype=object)
        self._filled = 0
        self._grow_table()
        return remap
