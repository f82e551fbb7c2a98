"""Shortest and slightly randomised paths on a city's directed graph, computed in batches.

Riders do not all take the exact shortest path: each trip uses one of a few *route variants*,
the road lengths multiplied by a fixed random factor per edge, so that two riders between the
same places may take different streets. Vans prefer arterials and avoid lanes. With
:class:`simulators.preferences.RoutePreferences` every rider variant's weights are also
multiplied by the shared per-edge preference factors, so route choice follows them.

Paths are computed with ``scipy.sparse.csgraph.dijkstra`` for many sources at once and only
the predecessor rows needed for a chunk of sources are kept, so memory stays bounded on a
15 km city with thousands of trips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from citymap.network import City
from simulators.preferences import RoutePreferences, edge_factors

VAN_VARIANT = -1
_CHUNK = 64


class Router:
    """Plans node paths on ``city`` for route variants 0..variants-1 and :data:`VAN_VARIANT`.

    Variant 0 is the plain shortest path by length (by preferred length with
    ``preferences``).
    """

    def __init__(
        self,
        city: City,
        *,
        seed: int,
        variants: int = 4,
        spread: float = 0.15,
        preferences: RoutePreferences | None = None,
    ) -> None:
        """Draw the per-edge weight factors of each variant from ``seed``; ``preferences``
        multiply every rider variant's weights (the draws do not change with them)."""
        rng = np.random.default_rng(seed)
        self.city = city
        length = city.edge_length_m
        felt = length if preferences is None else length * edge_factors(city, preferences)
        weights = [felt]
        for _ in range(1, variants):
            weights.append(felt * rng.lognormal(0.0, spread, size=len(length)))
        self._graphs = [city.graph(w) for w in weights]
        factor = np.select(
            [city.edge_class == "arterial", city.edge_class == "lane"], [0.6, 3.0], default=1.0
        )
        self._van_graph = city.graph(length * factor)
        self.variants = variants

    def _graph_of(self, variant: int) -> object:
        return self._van_graph if variant == VAN_VARIANT else self._graphs[variant]

    def variant_graph(self, variant: int) -> object:
        """The weighted adjacency matrix riders of ``variant`` (or vans) take shortest paths
        on: what a chooser that knows this route-choice model needs (the accuracy bench's
        ``route_choice_oracle``)."""
        return self._graph_of(variant)

    def paths(
        self,
        variant: NDArray[np.integer],
        src: NDArray[np.integer],
        dst: NDArray[np.integer],
    ) -> FlatPaths:
        """Node path (src ... dst) for every request; requests are answered in input order.

        Raises ValueError if a destination is unreachable (the city is strongly connected, so
        that means a bad node index).
        """
        variant = np.asarray(variant, dtype=np.int64)
        src_at: NDArray[np.int64] = np.asarray(src, dtype=np.int64)
        dst_at: NDArray[np.int64] = np.asarray(dst, dtype=np.int64)
        found: list[tuple[NDArray[np.int64], FlatPaths]] = []
        for v in np.unique(variant):
            mine = np.flatnonzero(variant == v)
            sources = np.unique(src_at[mine])
            for start in range(0, len(sources), _CHUNK):
                chunk = sources[start : start + _CHUNK]
                _, pred = dijkstra(
                    self._graph_of(int(v)), directed=True, indices=chunk, return_predecessors=True
                )
                reqs = mine[np.isin(src_at[mine], chunk)]
                row = np.searchsorted(chunk, src_at[reqs])
                found.append((reqs, _walk(pred, row, src_at[reqs], dst_at[reqs])))
        order = np.argsort(np.concatenate([r for r, _ in found] + [np.empty(0, np.int64)]))
        return FlatPaths.concat([p for _, p in found]).take(order)


@dataclass(frozen=True)
class FlatPaths:
    """Many node paths in one array: path ``k`` is ``node[start[k] : start[k] + lens[k]]``."""

    node: NDArray[np.int32]
    lens: NDArray[np.int64]

    @property
    def start(self) -> NDArray[np.int64]:
        """Offset of each path in ``node``."""
        return np.cumsum(self.lens) - self.lens

    def __len__(self) -> int:
        return len(self.lens)

    def path(self, k: int) -> NDArray[np.int32]:
        """Path ``k`` as an array of node indices."""
        s = int(self.start[k])
        return self.node[s : s + int(self.lens[k])]

    def take(self, which: NDArray[np.integer]) -> FlatPaths:
        """The paths ``which``, in that order."""
        which = np.asarray(which, np.int64)
        lens = self.lens[which]
        idx = np.repeat(self.start[which] - (np.cumsum(lens) - lens), lens) + np.arange(lens.sum())
        return FlatPaths(self.node[idx], lens)

    @staticmethod
    def concat(parts: list[FlatPaths]) -> FlatPaths:
        """All paths of ``parts``, one after the other."""
        if not parts:
            return FlatPaths(np.empty(0, np.int32), np.empty(0, np.int64))
        return FlatPaths(
            np.concatenate([p.node for p in parts]), np.concatenate([p.lens for p in parts])
        )


def _walk(
    pred: NDArray[np.int32],
    row: NDArray[np.int64],
    src: NDArray[np.int64],
    dst: NDArray[np.int64],
) -> FlatPaths:
    """Follow predecessors back from each ``dst`` to its ``src`` (row ``row`` of ``pred``).

    All requests step together, one node per iteration, so the Python loop runs once per node
    of the longest path rather than once per node of every path.
    """
    cur = dst.copy()
    steps = [cur.copy()]
    active = np.flatnonzero(cur != src)
    while len(active):
        nxt = pred[row[active], cur[active]]
        if np.any(nxt < 0):
            bad = active[np.flatnonzero(nxt < 0)[0]]
            raise ValueError(f"node {dst[bad]} is not reachable from {src[bad]}")
        cur[active] = nxt
        steps.append(cur.copy())
        active = active[nxt != src[active]]
    back = np.stack(steps, 1)  # (request, step): dst ... src, then src repeated
    lens = (back != src[:, None]).sum(1) + 1
    r = np.repeat(np.arange(len(dst)), lens)
    j = np.arange(len(r)) - np.repeat(np.cumsum(lens) - lens, lens)
    return FlatPaths(back[r, lens[r] - 1 - j].astype(np.int32), lens.astype(np.int64))
