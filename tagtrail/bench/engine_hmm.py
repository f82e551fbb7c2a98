"""The HMM map-matching baseline of ``tagtrail bench accuracy`` (leuvenmapmatching).

The sightings of one tag — reader positions in time order — are matched to the road graph by
leuvenmapmatching's ``DistanceMatcher`` with non-emitting states (readers are hundreds of meters
apart, so the matcher must be allowed to pass nodes without an observation). The matched node
sequence is then cut between consecutive sightings; a sighting pair the matcher did not cover
(it stopped early, or the cut fails) falls back to the shortest path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from leuvenmapmatching.map.inmem import InMemMap  # type: ignore[import-untyped]
from leuvenmapmatching.matcher.distance import DistanceMatcher  # type: ignore[import-untyped]

from track_engine.paths import shortest_path
from track_engine.roads import ReaderPaths, RoadGraph

# A new trace starts after this long without a sighting: the bike was parked in between.
_SPLIT_GAP_US = 600 * 1_000_000


class HmmMatcher:
    """leuvenmapmatching over one road graph (built once, reused for every tag)."""

    def __init__(self, graph: RoadGraph) -> None:
        self.graph = graph
        # Its "linear search" notice fires once per observation: keep the table readable.
        logging.getLogger("be.kuleuven.cs.dtai.mapmatching").setLevel(logging.ERROR)
        self.map = InMemMap("roads", use_latlon=False, use_rtree=False, index_edges=True)
        for node, (x, y) in enumerate(graph.node_xy_m.tolist()):
            self.map.add_node(node, (y, x))
        for s, d in zip(graph.edge_src.tolist(), graph.edge_dst.tolist(), strict=True):
            self.map.add_edge(s, d)

    def match(self, xy: Sequence[tuple[float, float]]) -> list[int]:
        """Matched node sequence of one trace (empty when nothing matched)."""
        if len(xy) < 2:
            return []
        matcher = DistanceMatcher(
            self.map,
            max_dist=80.0,
            max_dist_init=80.0,
            obs_noise=20.0,
            obs_noise_ne=60.0,
            dist_noise=60.0,
            non_emitting_states=True,
            max_lattice_width=8,
        )
        matcher.match([(y, x) for x, y in xy])
        nodes: list[int] = []
        for n in matcher.path_pred_onlynodes:
            if not nodes or nodes[-1] != int(n):  # it repeats a node matched twice in a row
                nodes.append(int(n))
        return nodes

    def chooser(self, xy: Sequence[tuple[float, float]], times_us: Sequence[int]) -> HmmChooser:
        """A path chooser for one tag whose sightings are at ``xy`` at ``times_us`` (sorted)."""
        matched: list[int] = []
        start = 0
        for i in range(1, len(xy) + 1):
            if i == len(xy) or times_us[i] - times_us[i - 1] > _SPLIT_GAP_US:
                matched += self.match(xy[start:i])
                start = i
        return HmmChooser(matched)


class HmmChooser:
    """Cuts one tag's matched node sequence into the paths between consecutive sightings."""

    def __init__(self, matched: list[int]) -> None:
        self.matched = matched
        self.cursor = 0
        self.fallbacks = 0

    def __call__(
        self,
        from_reader: str,
        to_reader: str,
        *,
        start_us: int,
        end_us: int,
        graph: RoadGraph,
        reader_nodes: Mapping[str, int],
        reader_paths: ReaderPaths,
    ) -> list[int] | None:
        """The matched stretch from ``from_reader``'s node to ``to_reader``'s, in order."""
        a, b = reader_nodes[from_reader], reader_nodes[to_reader]
        try:
            i = self.matched.index(a, self.cursor)
            j = self.matched.index(b, i)
            path = self.matched[i : j + 1]
            graph.path_length_m(path)  # raises ValueError where two matched nodes are not linked
        except ValueError:
            self.fallbacks += 1
            return shortest_path(
                from_reader, to_reader, start_us=start_us, end_us=end_us, graph=graph,
                reader_nodes=reader_nodes, reader_paths=reader_paths,
            )  # fmt: skip
        self.cursor = j
        return path
