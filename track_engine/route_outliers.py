"""Which passages stay on a route: misreads dropped, readers passed by not routed through.

Step 1 of :func:`track_engine.routes.build_route`. An *outlier* makes an impossible move both
from the passage before it and to the one after it while those two agree: it is dropped. A
passage is *passed by* when the road way between its neighbours passes as close to its reader's
node as the reader's own pole (:data:`track_engine.places.SURE_REACH_M`) and going through the
node instead is far less likely under the path model: the reader heard the bike from a road
that does not cross its node, so the route goes past it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import NDArray

from track_engine.path_model import PathModel
from track_engine.places import SURE_REACH_M
from track_engine.roads import ReaderPaths, RoadGraph
from track_engine.segment_kinds import too_fast

__all__ = ["off_path_m", "outlier_mask", "passed_by"]

_US_PER_S = 1_000_000
# A passage is "passed by" only when crossing the reader's node is this much less likely
# (natural log) than the way past it: 1 in 100, i.e. a reader hearing another road close to
# its node is not rare, but not the default explanation of a read either.
_PASSED_BY_LOGLIK = math.log(0.01)


def outlier_mask(
    readers: list[str], t: NDArray[np.int64], reader_paths: ReaderPaths, max_speed_mps: float
) -> NDArray[np.bool_]:
    """Passages to keep: drop each one whose both neighbours reject it while accepting each other.

    Walks the passages (in time order) once, comparing each with the last *kept* one, so that a
    run of consistent passages after a dropped outlier is judged against the route it continues.
    """
    n = len(readers)
    keep = np.ones(n, dtype=bool)
    if n < 3:
        return keep
    times = t.tolist()

    def fast(i: int, j: int) -> bool:
        return too_fast(
            reader_paths.distance_m(readers[i], readers[j]), times[j] - times[i], max_speed_mps
        )

    prev = 0
    for i in range(1, n - 1):
        if fast(prev, i) and fast(i, i + 1) and not fast(prev, i + 1):
            keep[i] = False
            continue
        prev = i
    return keep


def passed_by(
    readers: list[str],
    t: NDArray[np.int64],
    keep: NDArray[np.bool_],
    graph: RoadGraph,
    reader_paths: ReaderPaths,
    model: PathModel,
) -> dict[int, int]:
    """Kept passages heard from a road past the reader, not through its node: ``{passage:
    the kept passage before it}`` (see the module docstring).

    A reader's passage says the bike came within its reach, not that it crossed its node. So
    when the way from the passage before to the one after passes within ``SURE_REACH_M`` of
    the node (surely inside the read zone), both explain the read equally, and the path
    model's detour and speed terms decide:
    only a node far less likely to have been crossed (``_PASSED_BY_LOGLIK``) is passed by.
    """
    out: dict[int, int] = {}
    idx = np.flatnonzero(keep).tolist()
    times = t.tolist()
    node = reader_paths.reader_node
    prev = idx[0] if idx else 0
    for cur, nxt in itertools.pairwise(idx[1:]):
        a, x, b = readers[prev], readers[cur], readers[nxt]
        if node[x] in (node[a], node[b]):
            prev = cur
            continue
        direct = reader_paths.distance_m(a, b)
        via = reader_paths.distance_m(a, x) + reader_paths.distance_m(x, b)
        dt_s = (times[nxt] - times[prev]) / _US_PER_S
        ll_direct = model.speed_loglik(direct, dt_s) if math.isfinite(direct) else -math.inf
        if via <= direct or ll_direct == -math.inf:
            prev = cur
            continue
        ll_via = (
            model.speed_loglik(via, dt_s) + model.detour_loglik(via, direct)
            if math.isfinite(via)
            else -math.inf
        )
        if (
            ll_via - ll_direct >= _PASSED_BY_LOGLIK
            or off_path_m(graph, reader_paths.path(a, b), node[x]) > SURE_REACH_M
        ):
            prev = cur
            continue
        out[cur] = prev
    return out


def off_path_m(graph: RoadGraph, path: list[int], node: int) -> float:
    """Distance in meters from ``node`` to the polyline of ``path`` (road nodes)."""
    p = graph.node_xy_m[node]
    pts = graph.node_xy_m[np.asarray(path, dtype=np.int64)]
    if len(pts) == 1:
        return float(np.hypot(*(pts[0] - p)))
    a, d = pts[:-1], pts[1:] - pts[:-1]
    sq = (d * d).sum(axis=1)
    u = np.clip(((p - a) * d).sum(axis=1) / np.where(sq > 0, sq, 1.0), 0.0, 1.0)
    return float(np.min(np.hypot(*(a + u[:, None] * d - p).T)))
