"""Which trajectory points lie near which readers: a uniform grid instead of a KD-tree.

The read model first needs every (point, reader) pair within a reader's search radius. A
KD-tree over millions of positions costs more to build than to query, and the answer comes
back as Python lists; here each reader's disk is rasterized once into the cells of a grid,
each point looks up its cell in a dense table, and the few candidates are checked exactly.
Readers of each technology get their own table, so a point is only paired with readers that
can hear its tag (active tags with active readers, passive tags with UHF readers).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

CELL_M = 32.0


def near_pairs(
    pts: NDArray[np.float64],
    pt_active: NDArray[np.bool_],
    reader_xy: NDArray[np.float64],
    radius_m: NDArray[np.float64],
    reader_active: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(point, reader)`` index pairs with the point within ``radius_m[reader]`` (inclusive)
    and of the reader's technology, in no particular order."""
    if len(pts) == 0 or len(reader_xy) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    lo = np.floor((reader_xy - radius_m[:, None]).min(0) / CELL_M).astype(np.int64)
    hi = np.floor((reader_xy + radius_m[:, None]).max(0) / CELL_M).astype(np.int64)
    nx, ny = (hi - lo + 1).tolist()
    # Rasterize each reader's bounding box of cells: (cell, reader) pairs.
    c0 = np.floor((reader_xy - radius_m[:, None]) / CELL_M).astype(np.int64) - lo
    c1 = np.floor((reader_xy + radius_m[:, None]) / CELL_M).astype(np.int64) - lo
    wx, wy = c1[:, 0] - c0[:, 0] + 1, c1[:, 1] - c0[:, 1] + 1
    per = wx * wy
    rd = np.repeat(np.arange(len(reader_xy)), per)
    k = np.arange(len(rd)) - np.repeat(np.cumsum(per) - per, per)
    cx, cy = c0[rd, 0] + k % wx[rd], c0[rd, 1] + k // wx[rd]
    table = reader_active[rd].astype(np.int64) * (nx * ny) + cx * ny + cy
    order = np.lexsort((rd, table))
    table, rd = table[order], rd[order]
    first = np.searchsorted(table, np.arange(2 * nx * ny + 1))  # dense: cell -> readers

    p = np.floor(pts / CELL_M).astype(np.int64) - lo
    inside = (p[:, 0] >= 0) & (p[:, 0] < nx) & (p[:, 1] >= 0) & (p[:, 1] < ny)
    pt_idx = np.flatnonzero(inside)
    cell = pt_active[pt_idx].astype(np.int64) * (nx * ny) + p[pt_idx, 0] * ny + p[pt_idx, 1]
    count = first[cell + 1] - first[cell]
    has = count > 0
    pt_idx, cell, count = pt_idx[has], cell[has], count[has]
    cand_pt = np.repeat(pt_idx, count)
    j = np.arange(len(cand_pt)) - np.repeat(np.cumsum(count) - count, count)
    cand_rd = rd[np.repeat(first[cell], count) + j]
    d = pts[cand_pt] - reader_xy[cand_rd]
    near = d[:, 0] ** 2 + d[:, 1] ** 2 <= radius_m[cand_rd] ** 2
    return cand_pt[near], cand_rd[near]
