"""A generated city drawn the way OpenStreetMap draws streets: bend points every ~40 m.

    .venv/bin/python tools/osm_like_city.py --size-m 12000 --out /tmp/city30k.npz
    tagtrail bench accuracy --roads /tmp/city30k.npz --coverage 0.5 --miss-rate 0.3 --no-hmm

No real-city extract shipped in a registry package reaches 30,000 nodes (docs/accuracy.md), so
the size target of the real-city bench is measured on this stand-in: the generated city's
junctions, with every street split into ~``--bend-m`` pieces by ``shape`` nodes jittered a
meter or two sideways, as an OSM way's nodes are. Like an imported extract, most nodes are
then bends (no reader candidates) and the junctions are one node each (consolidated).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from citymap.network import City, xy_to_lonlat
from citymap.network_files import save_city
from simulators.city import generate_city


def with_bends(city: City, *, bend_m: float, seed: int) -> City:
    """``city`` with each street split by bend points about ``bend_m`` apart."""
    rng = np.random.default_rng(seed)
    src, dst = city.edge_src.astype(np.int64), city.edge_dst.astype(np.int64)
    # One street per node pair, whichever its directions: the lower id first.
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    _, first = np.unique(lo * city.n_nodes + hi, return_index=True)
    xy = [city.node_xy_m]
    kinds = [city.node_kind]
    new_src: list[np.ndarray] = []
    new_dst: list[np.ndarray] = []
    new_cls: list[np.ndarray] = []
    new_ow: list[np.ndarray] = []
    next_id = city.n_nodes
    reverse = city.edge_index(dst, src)
    for e in first.tolist():
        a, b = int(src[e]), int(dst[e])
        pieces = max(1, round(float(city.edge_length_m[e]) / bend_m))
        t = np.arange(1, pieces) / pieces
        d = city.node_xy_m[b] - city.node_xy_m[a]
        normal = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)
        pts = city.node_xy_m[a] + t[:, None] * d + rng.uniform(-1.5, 1.5, (len(t), 1)) * normal
        chain = np.concatenate([[a], np.arange(next_id, next_id + len(t)), [b]])
        next_id += len(t)
        xy.append(pts)
        kinds.append(np.full(len(t), "shape", dtype=object))
        both = int(reverse[e]) >= 0
        for u, v in [(chain[:-1], chain[1:])] + ([(chain[1:], chain[:-1])] if both else []):
            new_src.append(u)
            new_dst.append(v)
            new_cls.append(np.full(len(u), city.edge_class[e], dtype=object))
            new_ow.append(np.full(len(u), not both))
    all_xy = np.concatenate(xy)
    s, t_ = np.concatenate(new_src), np.concatenate(new_dst)
    order = np.lexsort((t_, s))
    s, t_ = s[order], t_[order]
    return City(
        origin_lat=city.origin_lat,
        origin_lon=city.origin_lon,
        node_xy_m=all_xy,
        node_lonlat=xy_to_lonlat(all_xy, city.origin_lat, city.origin_lon),
        edge_src=s.astype(np.int32),
        edge_dst=t_.astype(np.int32),
        edge_length_m=np.hypot(*(all_xy[t_] - all_xy[s]).T),
        edge_class=np.concatenate(new_cls)[order],
        edge_oneway=np.concatenate(new_ow)[order].astype(np.bool_),
        node_kind=np.concatenate(kinds),
        river_y_m=city.river_y_m,
    )


def main() -> None:
    """Write the stand-in network file and print its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-m", type=float, default=12_000.0)
    parser.add_argument("--bend-m", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    city = with_bends(
        generate_city(seed=args.seed, size_m=args.size_m), bend_m=args.bend_m, seed=args.seed
    )
    save_city(city, args.out)
    junctions = int((city.node_kind != "shape").sum())
    print(f"{args.out}: {city.n_nodes:,} nodes ({junctions:,} not bends), {city.n_edges:,} edges")


if __name__ == "__main__":
    main()
