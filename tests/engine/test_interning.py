"""Integer codes for tag and reader ids: stable, two-way, compactable."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from track_engine.interning import Interner

ids = st.lists(st.sampled_from(["E200", "E201", "A1", "FF", "0"]), max_size=40)


@given(first=ids, second=ids)
def test_codes_round_trip_and_stay_stable(first: list[str], second: list[str]) -> None:
    interner = Interner()
    a = interner.codes(np.asarray(first, dtype=object))
    b = interner.codes(np.asarray(second, dtype=object))
    assert interner.names(a).tolist() == first
    assert interner.names(b).tolist() == second
    # The same id always gets the same code, and codes are dense.
    for name, code in zip(first + second, np.concatenate([a, b]).tolist(), strict=True):
        assert interner.codes(np.asarray([name], dtype=object))[0] == code
    assert len(interner) == len(set(first) | set(second))


def test_repeated_names_in_a_distinct_list_share_one_code() -> None:
    interner = Interner()
    codes = interner.codes_of_distinct(["R1", "R2", "R1"]).tolist()
    assert codes == [0, 1, 0]
    assert len(interner) == 2


def test_compact_keeps_codes_in_use_and_remaps_them() -> None:
    interner = Interner()
    codes = interner.codes(np.asarray(["A", "B", "C", "D"], dtype=object))
    remap = interner.compact(np.asarray([codes[1], codes[3]]))
    assert len(interner) == 2
    assert interner.names(remap[[codes[1], codes[3]]]).tolist() == ["B", "D"]
    assert remap[codes[0]] == -1
    assert interner.codes(np.asarray(["D", "E"], dtype=object)).tolist() == [1, 2]


def test_count_distinct() -> None:
    interner = Interner()
    codes = interner.codes(np.asarray(["A", "B", "A", "C"], dtype=object))
    assert interner.count_distinct(codes) == 3
    assert interner.count_distinct(codes[:0]) == 0


def test_names_stay_right_as_the_table_grows_and_after_compaction() -> None:
    """The names table grows by doubling as ids arrive; lookups see every name, old and new,
    and a compaction rebuilds it for the codes kept."""
    interner = Interner()
    ids = [f"T{i:06d}" for i in range(5000)]
    for start in range(0, 5000, 700):  # batches that cross the table's capacity
        chunk = ids[start : start + 700]
        codes = interner.codes(np.asarray(chunk + chunk[:3], dtype=object))
        assert interner.names(codes).tolist() == chunk + chunk[:3]
    everything = interner.codes(np.asarray(ids, dtype=object))
    assert interner.names(everything).tolist() == ids
    remap = interner.compact(everything[::2])
    assert interner.names(remap[everything[::2]]).tolist() == ids[::2]
    fresh = interner.codes(np.asarray(["NEW", ids[0]], dtype=object))
    assert interner.names(fresh).tolist() == ["NEW", ids[0]]
