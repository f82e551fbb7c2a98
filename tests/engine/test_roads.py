"""Road graph: construction, shortest paths, nearest node, reader-pair precomputation."""

from __future__ import annotations

import numpy as np
import pytest

from track_engine.roads import NoPathError, RoadGraph, precompute_reader_paths, project_lonlat

ORIGIN = (121.15, 30.04)  # Yuyao


def grid_graph(cols: int = 4, rows: int = 3, spacing_m: float = 100.0) -> RoadGraph:
    """Two-way grid; node id = row * cols + col, (col, row) at (col, row) * spacing meters."""
    col, row = np.meshgrid(np.arange(cols), np.arange(rows))
    xy = np.column_stack([col.ravel(), row.ravel()]).astype(float) * spacing_m
    ids = np.arange(cols * rows).reshape(rows, cols)
    src = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    dst = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    lonlat = np.column_stack(
        [
            ORIGIN[0] + xy[:, 0] / (111_195.0 * np.cos(np.radians(ORIGIN[1]))),
            ORIGIN[1] + xy[:, 1] / 111_195.0,
        ]
    )
    return RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=src, edge_dst=dst, both_directions=True
    )


def test_project_lonlat_is_metric_near_the_origin() -> None:
    xy = project_lonlat([[121.15, 30.04], [121.15, 30.041], [121.151, 30.04]], (121.15, 30.04))
    assert xy[0] == pytest.approx([0.0, 0.0])
    assert xy[1, 1] == pytest.approx(111.195, rel=1e-3)
    assert xy[2, 0] == pytest.approx(111.195 * np.cos(np.radians(30.04)), rel=1e-3)


def test_from_arrays_defaults_lengths_and_projection() -> None:
    g = RoadGraph.from_arrays(
        node_lonlat=[[121.15, 30.04], [121.15, 30.041]], edge_src=[0], edge_dst=[1]
    )
    assert g.edge_length_m == pytest.approx([111.195], rel=1e-3)
    assert g.node_xy_m.shape == (2, 2)
    assert g.edge_src.dtype == np.int32


def test_parallel_edges_keep_the_shortest_and_self_loops_go() -> None:
    g = RoadGraph.from_arrays(
        node_lonlat=np.zeros((3, 2)),
        node_xy_m=[[0, 0], [10, 0], [20, 0]],
        edge_src=[0, 0, 1, 1],
        edge_dst=[1, 1, 1, 2],
        edge_length_m=[50.0, 12.0, 1.0, 10.0],
    )
    assert g.edge_src.tolist() == [0, 1]
    assert g.edge_length_m.tolist() == [12.0, 10.0]
    assert g.path_length_m([0, 1, 2]) == pytest.approx(22.0)


def test_from_arrays_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="out of range"):
        RoadGraph.from_arrays(node_lonlat=np.zeros((2, 2)), edge_src=[0], edge_dst=[2])
    with pytest.raises(ValueError, match="one entry per edge"):
        RoadGraph.from_arrays(
            node_lonlat=np.zeros((2, 2)), edge_src=[0], edge_dst=[1], edge_length_m=[1.0, 2.0]
        )
    with pytest.raises(ValueError, match="finite"):
        RoadGraph.from_arrays(
            node_lonlat=np.zeros((2, 2)), edge_src=[0], edge_dst=[1], edge_length_m=[-1.0]
        )


def test_shortest_path_nodes_and_length() -> None:
    g = grid_graph()
    dist, pred = g.shortest_paths_from([0])
    assert dist.shape == pred.shape == (1, 12)
    assert dist[0, 3] == pytest.approx(300.0)
    assert g.path_nodes(0, 3) == [0, 1, 2, 3]
    assert g.path_nodes(5, 5) == [5]
    path = g.path_nodes(0, 11)
    assert path[0] == 0
    assert path[-1] == 11
    assert len(path) == 6
    assert g.path_length_m(path) == pytest.approx(500.0)
    assert g.path_length_m([4]) == 0.0
    with pytest.raises(ValueError, match="no edge"):
        g.path_length_m([0, 5])


def test_one_way_street_has_no_way_back() -> None:
    g = RoadGraph.from_arrays(
        node_lonlat=np.zeros((2, 2)), node_xy_m=[[0, 0], [50, 0]], edge_src=[0], edge_dst=[1]
    )
    assert g.path_nodes(0, 1) == [0, 1]
    with pytest.raises(NoPathError):
        g.path_nodes(1, 0)


def test_nearest_node() -> None:
    g = grid_graph()
    assert g.nearest_node(190.0, 10.0) == 2
    assert g.nearest_node(-50.0, 260.0) == 8


def test_reader_paths_precomputed_for_every_pair() -> None:
    g = grid_graph()
    readers = {"R1": 0, "R2": 3, "R3": 11, "R4": 3}  # two readers may share a node
    paths = precompute_reader_paths(g, readers, chunk_size=2)
    assert paths.distance_m("R1", "R2") == pytest.approx(300.0)
    assert paths.distance_m("R2", "R4") == 0.0
    assert paths.distance_m("R3", "R1") == pytest.approx(500.0)
    assert paths.path("R1", "R2") == [0, 1, 2, 3]
    assert paths.path("R2", "R2") == [3]
    assert paths.distance_matrix_m.shape == (4, 4)
    with pytest.raises(KeyError, match="unknown reader"):
        paths.distance_m("R1", "nope")


def test_reader_paths_unreachable_is_infinite() -> None:
    g = RoadGraph.from_arrays(
        node_lonlat=np.zeros((2, 2)), node_xy_m=[[0, 0], [50, 0]], edge_src=[0], edge_dst=[1]
    )
    paths = precompute_reader_paths(g, {"A": 0, "B": 1})
    assert paths.distance_m("A", "B") == pytest.approx(50.0)
    assert paths.distance_m("B", "A") == np.inf
    with pytest.raises(NoPathError):
        paths.path("B", "A")


def test_a_path_grown_only_to_its_known_distance_is_the_whole_tree_path() -> None:
    from simulators.city import generate_city

    city = generate_city(seed=4, size_m=2500.0)

    def fresh() -> RoadGraph:  # no cached trees: each graph answers from its own Dijkstra
        return RoadGraph.from_arrays(
            node_lonlat=city.node_lonlat, node_xy_m=city.node_xy_m, edge_src=city.edge_src,
            edge_dst=city.edge_dst, edge_length_m=city.edge_length_m,
        )  # fmt: skip

    rng = np.random.default_rng(1)
    pairs = rng.integers(0, city.n_nodes, size=(60, 2)).tolist()
    whole = fresh()
    dist, _ = whole.shortest_paths_from(sorted({a for a, _ in pairs}))
    row = {a: i for i, a in enumerate(sorted({a for a, _ in pairs}))}
    for a, b in pairs:
        grown = fresh()
        d = float(dist[row[a], b])
        assert grown.path_nodes(a, b, distance_m=d) == whole.path_nodes(a, b)
        assert grown.path_length_m(grown.path_nodes(a, b, distance_m=d)) == pytest.approx(d)


def test_shared_distances_serve_every_deployment_and_run_each_source_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from simulators.city import generate_city
    from track_engine.roads import NodeDistances

    city = generate_city(seed=4, size_m=2000.0)
    g = RoadGraph.from_arrays(
        node_lonlat=city.node_lonlat, node_xy_m=city.node_xy_m, edge_src=city.edge_src,
        edge_dst=city.edge_dst, edge_length_m=city.edge_length_m,
    )  # fmt: skip
    sites = np.random.default_rng(2).choice(city.n_nodes, size=40, replace=False).tolist()
    shared = NodeDistances(g, sites, chunk_size=7)
    sources: list[int] = []
    real = RoadGraph.shortest_paths_from

    def counting(self: RoadGraph, nodes: list[int]) -> tuple[np.ndarray, np.ndarray]:
        sources.extend(nodes)
        return real(self, nodes)

    monkeypatch.setattr(RoadGraph, "shortest_paths_from", counting)
    for count in (20, 40, 20):  # a low coverage, a high one, the low one again
        readers = {f"R{i}": n for i, n in enumerate(sites[:count])}
        got = precompute_reader_paths(g, readers, distances=shared)
        want = precompute_reader_paths(g, readers)
        assert np.array_equal(got.distance_matrix_m, want.distance_matrix_m)
    # The direct runs above ran 80 sources; the shared one each site once.
    assert len(sources) == 80 + 40
    with pytest.raises(ValueError, match="not in the distance set"):
        precompute_reader_paths(g, {"X": next(n for n in range(g.node_count) if n not in sites)},
                                distances=shared)  # fmt: skip
