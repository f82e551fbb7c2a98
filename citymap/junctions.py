"""Consolidate the OSM nodes of one real junction into one node (osmnx's method, on our arrays).

In OpenStreetMap one street junction is often several nodes: each carriageway of a dual
carriageway meets the cross street at its own node, turn lanes and short link ways add more, a
roundabout is a ring of nodes. A reader per node puts readers a few meters apart that hear the
same pass, which the engine then takes for a clone. osmnx's ``consolidate_intersections``
(Boeing, "Topological intersection consolidation") fixes this by buffering every intersection
node by ``tolerance`` meters, merging the nodes whose buffers overlap, splitting a merged group
again where its nodes are not linked by a road *inside* the group (a bridge over a street, a
cycleway beside a road), and replacing each group by one node at its centroid. This module does
the same on the unsimplified importer graph:

* *Intersection nodes* are the junction nodes where three or more ways meet (dead ends and bend
  points are never merged, as in osmnx with ``dead_ends=False``).
* Two of them are *near* when at most ``2 * tolerance_m`` apart (their buffers overlap); near
  nodes form proximity groups (transitively, as a union of buffers does).
* Inside a proximity group, nodes are *linked* by a direct segment, or by a chain of bend
  points (the inside of one simplified edge) no longer than ``CHAIN_FACTOR * tolerance_m``
  whose two ends are both in the group. Linked components are the consolidated junctions.
* A linked chain's bend points vanish with it (the turn lane is inside the junction); so does
  a dead-end stub no longer than ``STUB_FACTOR * tolerance_m`` (osmnx drops dead ends before
  consolidating); every other segment is kept, its ends moved to their junction's centroid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

# A chain of bend points longer than this many tolerances is a real road that leaves and comes
# back (a loop), not a turn lane inside the junction.
CHAIN_FACTOR = 4.0
# A dead-end stub no longer than this many tolerances is a kerb-side spur of the junction (a
# parking bay, a driveway mouth) and goes: a reader at its end would stand beside the junction's.
STUB_FACTOR = 2.0
DEFAULT_TOLERANCE_M = 10.0


@dataclass(frozen=True)
class Consolidation:
    """Where each input node went.

    ``new_node[i]`` is the output node of input node ``i`` (-1: it vanished inside a junction);
    ``xy_m`` the output nodes' positions; ``merged[k]`` how many input nodes output node ``k``
    stands for (1 for a node left alone; bend points that vanished are not counted).
    """

    new_node: NDArray[np.int64]
    xy_m: NDArray[np.float64]
    merged: NDArray[np.int64]


def consolidate(
    xy_m: NDArray[np.float64],
    is_junction: NDArray[np.bool_],
    seg_a: NDArray[np.int64],
    seg_b: NDArray[np.int64],
    *,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> Consolidation:
    """Merge the nodes of each real junction (see the module docstring).

    ``seg_a``/``seg_b`` are undirected segments between node indices (direction and
    duplicates do not matter); ``is_junction`` marks the nodes that are not plain bend points.
    ``tolerance_m <= 0`` merges nothing.
    """
    n = len(xy_m)
    a = np.asarray(seg_a, np.int64)
    b = np.asarray(seg_b, np.int64)
    keep_self = a != b
    a, b = a[keep_self], b[keep_self]
    if tolerance_m <= 0 or n == 0:
        return Consolidation(np.arange(n, dtype=np.int64), xy_m.copy(), np.ones(n, np.int64))
    # Distinct neighbours per node: three or more is where ways meet.
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1), axis=0)
    degree = np.bincount(pairs.ravel(), minlength=n)
    inter = np.asarray(is_junction, bool) & (degree >= 3)

    # Proximity groups: buffers of radius tolerance overlap.
    cand = np.flatnonzero(inter)
    near = cKDTree(xy_m[cand]).query_pairs(2.0 * tolerance_m, output_type="ndarray")
    group = np.full(n, -1, np.int64)
    group[cand] = _components(len(cand), near[:, 0], near[:, 1])

    # Chains of bend points: components of the segments joining two bend points. A dead end
    # belongs to the chain that leads to it (a stub).
    dead_end = degree == 1
    bend = ~np.asarray(is_junction, bool) | dead_end
    length = np.hypot(*(xy_m[a] - xy_m[b]).T)
    both = bend[a] & bend[b]
    chain = np.full(n, -1, np.int64)
    bends = np.flatnonzero(bend)
    local = np.full(n, -1, np.int64)
    local[bends] = np.arange(len(bends))
    chain[bends] = _components(len(bends), local[a[both]], local[b[both]])
    # Segments from a bend point to a junction: the chain's two ends.
    one = bend[a] ^ bend[b]
    ends = pd.DataFrame({
        "chain": np.where(bend[a[one]], chain[a[one]], chain[b[one]]),
        "end": np.where(bend[a[one]], b[one], a[one]),
    })  # fmt: skip
    chain_m = np.bincount(chain[a[both]], weights=length[both], minlength=len(bends))
    chain_m += np.bincount(ends["chain"].to_numpy(), weights=length[one], minlength=len(bends))
    ends["group"] = group[ends["end"].to_numpy()]
    by_chain = ends.groupby("chain").agg(
        lo=("end", "min"), hi=("end", "max"), g_lo=("group", "min"), g_hi=("group", "max")
    )
    chain_ids = by_chain.index.to_numpy(np.int64)
    stub = np.bincount(chain[dead_end], minlength=len(bends))[chain_ids] > 0
    short_stubs = chain_ids[stub & (chain_m[chain_ids] <= STUB_FACTOR * tolerance_m)]
    internal = (
        ~stub
        & (by_chain["g_lo"] >= 0)
        & (by_chain["g_lo"] == by_chain["g_hi"])
        & (chain_m[by_chain.index.to_numpy(np.int64)] <= CHAIN_FACTOR * tolerance_m)
    )
    inner_chains = by_chain[internal]

    # Links inside a proximity group: direct segments and internal chains.
    direct = (group[a] >= 0) & (group[a] == group[b])
    link_a = np.concatenate([a[direct], inner_chains["lo"].to_numpy(np.int64)])
    link_b = np.concatenate([b[direct], inner_chains["hi"].to_numpy(np.int64)])
    label = _components(n, link_a, link_b)

    # Bend points of internal chains vanish; everything else maps to its component.
    gone = np.zeros(n, bool)
    vanish = np.concatenate([inner_chains.index.to_numpy(np.int64), short_stubs])
    gone[bends] = np.isin(chain[bends], vanish)
    labels_kept, new_node = np.unique(label[~gone], return_inverse=True)
    out = np.full(n, -1, np.int64)
    out[~gone] = new_node
    counts = np.bincount(new_node, minlength=len(labels_kept))
    xy = (
        np.stack(
            [
                np.bincount(new_node, weights=xy_m[~gone, k], minlength=len(labels_kept))
                for k in (0, 1)
            ],
            1,
        )
        / counts[:, None]
    )
    return Consolidation(out, xy, counts.astype(np.int64))


def _components(n: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected-component label of each of ``n`` nodes joined by undirected pairs."""
    if n == 0:
        return np.empty(0, np.int64)
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, np.int64)
