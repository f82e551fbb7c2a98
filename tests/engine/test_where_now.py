"""The where-now map: a probability over cells that sums to 1, grows with time, and moves away
from ways whose readers stayed silent."""

from __future__ import annotations

import numpy as np

from track_engine.roads import RoadGraph
from track_engine.where_now import SpeedModel, where_now


def grid_graph(size: int = 41, step_m: float = 100.0) -> RoadGraph:
    """A two-way street grid of ``size`` x ``size`` nodes, ``step_m`` apart, near Hangzhou."""
    ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    xy = np.column_stack([jj.ravel() * step_m, ii.ravel() * step_m]).astype(float)
    lonlat = np.column_stack([120.0 + xy[:, 0] / 90_000, 30.0 + xy[:, 1] / 111_000])
    idx = ii * size + jj
    src = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    dst = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    return RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=src, edge_dst=dst, both_directions=True
    )


def line_graph(n_each_side: int = 60, step_m: float = 50.0) -> tuple[RoadGraph, int]:
    """One straight two-way road; the middle node is returned as the start."""
    n = 2 * n_each_side + 1
    xy = np.column_stack([np.arange(n) * step_m, np.zeros(n)])
    lonlat = np.column_stack([120.0 + xy[:, 0] / 90_000, np.full(n, 30.0)])
    graph = RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=np.arange(n - 1), edge_dst=np.arange(1, n),
        both_directions=True,
    )  # fmt: skip
    return graph, n_each_side


def test_probabilities_sum_to_one_and_stay_within_reach() -> None:
    graph = grid_graph()
    centre = 20 * 41 + 20
    wn = where_now(graph, centre, 300.0, {})
    assert np.isclose(wn.cell_prob.sum(), 1.0)
    assert np.all(np.diff(wn.cell_prob) <= 1e-15)  # most probable first
    # No cell farther than the reach (plus a cell's diagonal) from the start.
    cx, cy = graph.node_xy_m[centre]
    far = np.hypot((wn.cell_ix + 0.5) * 100 - cx, (wn.cell_iy + 0.5) * 100 - cy)
    assert far.max() <= wn.reach_m + 100 * np.sqrt(2)
    assert wn.reach_m == SpeedModel().max_reach_m(300.0)


def test_region_grows_with_time() -> None:
    graph = grid_graph()
    centre = 20 * 41 + 20
    areas = [where_now(graph, centre, t, {}).region_area_km2(0.9) for t in (60, 180, 420)]
    assert areas[0] < areas[1] < areas[2]
    # The map is narrower than the reach circle it replaces.
    late = where_now(graph, centre, 420, {})
    assert late.region_area_km2(0.9) < late.reach_area_km2()


def test_a_silent_reliable_reader_cuts_its_way() -> None:
    graph, start = line_graph()
    east_reader = start + 6  # 300 m east of the sighting
    silent = where_now(graph, start, 600.0, {east_reader: 0.02})
    open_way = where_now(graph, start, 600.0, {})
    x0 = graph.node_xy_m[start, 0]

    def east_share(wn: object) -> float:
        beyond = (wn.cell_ix + 1) * wn.cell_m > x0 + 300 + wn.cell_m  # type: ignore[attr-defined]
        return float(wn.cell_prob[beyond].sum())  # type: ignore[attr-defined]

    assert east_share(open_way) > 0.3
    assert east_share(silent) < 0.1 * east_share(open_way)
    assert east_share(silent) > 0  # less likely, not impossible
    # A reader that misses most tags says little.
    sloppy = where_now(graph, start, 600.0, {east_reader: 0.9})
    assert east_share(sloppy) > 0.8 * east_share(open_way)


def test_contains_and_geojson_region() -> None:
    graph = grid_graph()
    centre = 20 * 41 + 20
    wn = where_now(graph, centre, 300.0, {})
    x, y = graph.node_xy_m[centre]
    assert wn.contains(x + 1, y + 1)
    assert not wn.contains(x + 10_000, y)
    doc = wn.region_geojson(graph)
    feats = doc["features"]
    assert isinstance(feats, list)
    assert len(feats) == wn.region_size(0.9)
    total = sum(f["properties"]["probability"] for f in feats)
    assert 0.9 <= total <= 1.0 + 1e-6
    ring = np.asarray(feats[0]["geometry"]["coordinates"][0])
    assert ring.shape == (5, 2)
    assert ring[:, 0].min() > 119.9
    assert ring[:, 1].max() < 30.1


def test_cells_of_a_single_street_are_squares_on_the_map() -> None:
    graph, start = line_graph()  # every node at one latitude: nothing to fit lat on
    ring = np.asarray(
        where_now(graph, start, 120.0, {}).region_geojson(graph)["features"][0]["geometry"][
            "coordinates"
        ][0]
    )
    height_m = (ring[:, 1].max() - ring[:, 1].min()) * 111_195
    width_m = (ring[:, 0].max() - ring[:, 0].min()) * 90_000
    assert abs(height_m - 100) < 1
    assert abs(width_m - 100) < 1
