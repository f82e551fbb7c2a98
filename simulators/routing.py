"""Shortest and slightly randomised paths on a city's directed graph, computed in batches.

Riders do not all take the exact shortest path: each trip uses one of a few *route variants*,
the road lengths multiplied by a fixed random factor per edge, so that two riders between the
same places may take different streets. Vans prefer arterials and avoid lanes.

Paths are computed with ``scipy.sparse.csgraph.dijkstra`` for many sources at once and only
the predecessor rows needed for a chunk of sources are kept, so memory stays bounded on a
15 km city with thousands of trips.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from simulators.city import City

VAN_VARIANT = -1
_CHUNK = 64


class Router:
    """Plans node paths on ``city`` for route variants 0..variants-1 and :data:`VAN_VARIANT`.

    Variant 0 is the plain shortest path by length.
    """

    def __init__(self, city: City, *, seed: int, variants: int = 4, spread: float = 0.15) -> None:
        """Draw the per-edge weight factors of each variant from ``seed``."""
        rng = np.random.default_rng(seed)
        self.city = city
        length = city.edge_length_m
        weights = [length]
        for _ in range(1, variants):
            weights.append(length * rng.lognormal(0.0, spread, size=len(length)))
        self._graphs = [city.graph(w) for w in weights]
        factor = np.select(
            [city.edge_class == "arterial", city.edge_class == "lane"], [0.6, 3.0], default=1.0
        )
        self._van_graph = city.graph(length * factor)
        self.variants = variants

    def _graph_of(self, variant: int) -> object:
        return self._van_graph if variant == VAN_VARIANT else self._graphs[variant]

    def paths(
        self,
        variant: NDArray[np.integer],
        src: NDArray[np.integer],
        dst: NDArray[np.integer],
    ) -> list[NDArray[np.int32]]:
        """Node path (src ... dst) for every request; requests are answered in input order.

        Raises ValueError if a destination is unreachable (the city is strongly connected, so
        that means a bad node index).
        """
        variant = np.asarray(variant, dtype=np.int64)
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        out: list[NDArray[np.int32]] = [np.empty(0, np.int32)] * len(src)
        for v in np.unique(variant):
            mine = np.flatnonzero(variant == v)
            sources = np.unique(src[mine])
            for start in range(0, len(sources), _CHUNK):
                chunk = sources[start : start + _CHUNK]
                _, pred = dijkstra(
                    self._graph_of(int(v)), directed=True, indices=chunk, return_predecessors=True
                )
                row_of = {int(s): k for k, s in enumerate(chunk)}
                for req in mine[np.isin(src[mine], chunk)]:
                    out[req] = _walk(pred[row_of[int(src[req])]], int(src[req]), int(dst[req]))
        return out


def _walk(pred: NDArray[np.int32], src: int, dst: int) -> NDArray[np.int32]:
    """Follow predecessors back from ``dst`` to ``src``."""
    nodes = [dst]
    node = dst
    while node != src:
        node = int(pred[node])
        if node < 0:
            raise ValueError(f"node {dst} is not reachable from {src}")
        nodes.append(node)
    return np.asarray(nodes[::-1], dtype=np.int32)
