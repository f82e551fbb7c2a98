"""A generated city road network for the simulators.

The city is an irregular street grid: column and row spacings vary around ``block_m``, nodes
are jittered, a few street segments are missing, every few blocks a row or column is an
arterial, a few streets are one-way, a river crosses the city with a handful of bridges (the
bottlenecks a thief cannot avoid), housing estates hang off the grid behind a single gate, and
campuses sit inside the grid behind two to four gates. Each straight grid line has a street
name (deterministic by seed; lanes inside estates and campuses have none).

Coordinates: a local east/north plane in meters (``node_xy_m``) around a projection origin,
and longitude/latitude in degrees (``node_lonlat``) from an equirectangular projection about
that origin (``lon = lon0 + x / (R cos lat0)``, ``lat = lat0 + y / R``, R = 6,371,008.8 m).
Over 15 km the projection is accurate to well under a meter, which is all the simulators need.

Edges are *directed*: a two-way street is two edges, a one-way street one. The generated graph
is strongly connected (every node reachable from every other), checked with
``scipy.sparse.csgraph.connected_components(connection="strong")`` and repaired by making
one-way streets two-way, then by dropping whatever is still cut off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from citymap.network import City, xy_to_lonlat

DEFAULT_ORIGIN_LAT = 30.05
DEFAULT_ORIGIN_LON = 121.15
RIVER_WIDTH_M = 60.0


def _spacings(rng: np.random.Generator, count: int, block_m: float) -> NDArray[np.float64]:
    steps = block_m * rng.uniform(0.7, 1.3, size=count)
    return np.concatenate([[0.0], np.cumsum(steps)])


def generate_city(
    *,
    seed: int,
    size_m: float = 2000.0,
    block_m: float = 150.0,
    origin_lat: float = DEFAULT_ORIGIN_LAT,
    origin_lon: float = DEFAULT_ORIGIN_LON,
    arterial_every: int = 4,
    removed_fraction: float = 0.07,
    oneway_fraction: float = 0.15,
    estate_fraction: float = 0.12,
) -> City:
    """Generate a strongly connected city of about ``size_m`` x ``size_m`` meters.

    The same ``seed`` and arguments always give the same city. ``size_m`` from 2 km (a toy
    district of ~200 nodes) to 15 km (~10,000 nodes) is the intended range.
    """
    if size_m <= 0 or block_m <= 0:
        raise ValueError("size_m and block_m must be positive")
    # One generator drawn from in a fixed order (the steps below): the same seed, the same city.
    rng = np.random.default_rng(seed)
    g = _grid(rng, size_m, block_m, arterial_every)
    g.name = _street_names(g, seed)
    crossing = _bridges(g, rng, size_m)
    plain = (g.cls == "street") & ~crossing
    g.keep[plain & (rng.random(len(g.seg_a)) < removed_fraction)] = False
    _one_way_streets(g, rng, plain, oneway_fraction)
    kinds: list[str] = ["junction"] * (g.nx * g.ny)
    campus_centres = _campuses(g, rng, kinds, size_m)
    extra = _estates(g, rng, kinds, campus_centres, estate_fraction)
    keep = g.keep
    all_a = np.concatenate([g.seg_a[keep], np.asarray(extra.a, np.int64)])
    all_b = np.concatenate([g.seg_b[keep], np.asarray(extra.b, np.int64)])
    all_cls = np.concatenate([g.cls[keep], np.asarray(extra.cls, dtype=object)])
    all_ow = np.concatenate([g.oneway[keep], np.asarray(extra.oneway, bool)])
    all_rev = np.concatenate([g.reverse[keep], np.asarray(extra.reverse, bool)])
    all_name = np.concatenate([g.name[keep], np.asarray(extra.name, dtype=object)])
    all_name[all_cls == "lane"] = ""  # paths inside estates and campuses have no street name
    pts = np.concatenate([g.xy.reshape(-1, 2), *extra.xy])
    return _assemble(
        pts, np.asarray(kinds, dtype=object), all_a, all_b, all_cls, all_ow, all_rev,
        origin_lat, origin_lon, g.river_y, all_name,
    )  # fmt: skip


@dataclass
class _Grid:
    """The jittered street grid being generated: nodes, undirected segments and their state."""

    nx: int
    ny: int
    xy: NDArray[np.float64]  # [row j, column i, (x, y)]
    col: NDArray[np.int64]  # of each node
    row: NDArray[np.int64]
    ids: NDArray[np.int64]  # [row j, column i] -> node
    river_row: int | None  # the river runs between this row and the next
    river_y: float | None
    seg_a: NDArray[np.int64]  # undirected segments: horizontal then vertical
    seg_b: NDArray[np.int64]
    horizontal: NDArray[np.bool_]
    seg_row: NDArray[np.int64]  # for horizontal segments, their row
    seg_col: NDArray[np.int64]  # for vertical segments, their column
    art_rows: NDArray[np.bool_]
    art_cols: NDArray[np.bool_]
    arterial: NDArray[np.bool_]
    cls: NDArray[np.object_]
    keep: NDArray[np.bool_]
    oneway: NDArray[np.bool_]
    reverse: NDArray[np.bool_]  # one-way b -> a instead of a -> b
    name: NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))


@dataclass
class _Extra:
    """Nodes and segments added to the grid (estate gates and insides)."""

    xy: list[NDArray[np.float64]] = field(default_factory=list)
    a: list[int] = field(default_factory=list)
    b: list[int] = field(default_factory=list)
    cls: list[str] = field(default_factory=list)
    oneway: list[bool] = field(default_factory=list)
    reverse: list[bool] = field(default_factory=list)
    name: list[str] = field(default_factory=list)


def _grid(rng: np.random.Generator, size_m: float, block_m: float, arterial_every: int) -> _Grid:
    """The jittered grid with its river gap and arterial rows and columns."""
    blocks = max(3, round(size_m / block_m))
    nx = ny = blocks + 1
    xs = _spacings(rng, blocks, block_m)
    ys = _spacings(rng, blocks, block_m)
    xs *= size_m / xs[-1]
    ys *= size_m / ys[-1]

    # River between rows river_row and river_row + 1: push the rows north of it apart.
    river_row: int | None = None
    river_y: float | None = None
    if ny >= 5:
        river_row = int(rng.integers(ny // 3, max(ny // 3 + 1, 2 * ny // 3)))
        ys[river_row + 1 :] += RIVER_WIDTH_M
        river_y = float((ys[river_row] + ys[river_row + 1]) / 2.0)

    gx, gy = np.meshgrid(xs, ys)  # [row j, column i]
    jitter = rng.uniform(-0.08, 0.08, size=(ny, nx, 2)) * block_m
    xy = np.stack([gx, gy], axis=-1) + jitter
    col = np.tile(np.arange(nx), ny)
    row = np.repeat(np.arange(ny), nx)
    ids = np.arange(nx * ny).reshape(ny, nx)

    h_a, h_b = ids[:, :-1].ravel(), ids[:, 1:].ravel()
    v_a, v_b = ids[:-1, :].ravel(), ids[1:, :].ravel()
    seg_a = np.concatenate([h_a, v_a])
    seg_b = np.concatenate([h_b, v_b])
    horizontal = np.concatenate([np.ones(len(h_a), bool), np.zeros(len(v_a), bool)])
    seg_row = row[seg_a]
    seg_col = col[seg_a]
    art_off_r = int(rng.integers(1, arterial_every))
    art_off_c = int(rng.integers(1, arterial_every))
    art_rows = (np.arange(ny) % arterial_every) == art_off_r % arterial_every
    art_cols = (np.arange(nx) % arterial_every) == art_off_c % arterial_every
    arterial = np.where(horizontal, art_rows[seg_row], art_cols[seg_col])
    return _Grid(
        nx=nx, ny=ny, xy=xy, col=col, row=row, ids=ids, river_row=river_row, river_y=river_y,
        seg_a=seg_a, seg_b=seg_b, horizontal=horizontal, seg_row=seg_row, seg_col=seg_col,
        art_rows=art_rows, art_cols=art_cols, arterial=arterial,
        cls=np.where(arterial, "arterial", "street").astype(object),
        keep=np.ones(len(seg_a), bool), oneway=np.zeros(len(seg_a), bool),
        reverse=np.zeros(len(seg_a), bool),
    )  # fmt: skip


_NAME_BASES = (
    "Jiefang", "Zhongshan", "Renmin", "Heping", "Jianshe", "Xinhua", "Wenhua", "Yingbin",
    "Dongfeng", "Chang'an", "Minzhu", "Huaihai", "Yan'an", "Qingnian", "Gongnong", "Shengli",
    "Guangming", "Xingfu", "Tianmu", "Baita", "Fuxing", "Hongqi", "Kaiyuan", "Jiangnan",
    "Binhe", "Wulin", "Huancheng", "Chaohui", "Moganshan", "Fengqi", "Qingchun", "Yan'guan",
    "Hushu", "Shixiang", "Wensan", "Xueyuan", "Gudun", "Tianmushan", "Wenyi", "Jiaogong",
    "Xixi", "Dengyun", "Shangtang", "Zhonghe", "Yanan", "Qiutao", "Fuchun", "Meihua",
)  # fmt: skip
_NAME_PREFIXES = ("", "New ", "Upper ", "East ", "North ")


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _street_names(g: _Grid, seed: int) -> NDArray[np.object_]:
    """A plausible name per straight grid line, so the demo's map has street names: columns
    are "<name> Road", arterial rows "<name> Avenue", other rows "<n>th Street" from the
    south. Drawn from a generator of its own, so the city itself is the same as without."""
    rng = np.random.default_rng([seed % 2**63, 0x57EE7])
    bases = [p + b for p in _NAME_PREFIXES for b in rng.permutation(_NAME_BASES).tolist()]
    col_names = [
        f"{bases[i % len(bases)]} {'Boulevard' if g.art_cols[i] else 'Road'}" for i in range(g.nx)
    ]
    row_names: list[str] = []
    street_no = 0
    for j in range(g.ny):
        if g.art_rows[j]:
            row_names.append(f"{bases[(g.nx + j) % len(bases)]} Avenue")
        else:
            street_no += 1
            row_names.append(f"{_ordinal(street_no)} Street")
    rows = np.asarray(row_names, dtype=object)[g.seg_row]
    cols = np.asarray(col_names, dtype=object)[g.seg_col]
    return np.where(g.horizontal, rows, cols).astype(object)


def _bridges(g: _Grid, rng: np.random.Generator, size_m: float) -> NDArray[np.bool_]:
    """Close the segments crossing the river but a few bridges; the crossing segments."""
    crossing: NDArray[np.bool_] = np.zeros(len(g.seg_a), bool)
    if g.river_row is None:
        return crossing
    crossing = ~g.horizontal & (g.seg_row == g.river_row)
    cand = np.flatnonzero(crossing)
    n_bridges = min(len(cand), max(2, round(size_m / 700.0)))
    prio = np.where(g.arterial[cand], 0.0, 1.0) + rng.uniform(0, 0.5, len(cand))
    bridges = cand[np.argsort(prio, kind="stable")[:n_bridges]]
    g.keep[crossing] = False
    g.keep[bridges] = True
    g.cls[bridges] = "bridge"
    return crossing


def _one_way_streets(
    g: _Grid, rng: np.random.Generator, plain: NDArray[np.bool_], oneway_fraction: float
) -> None:
    """One-way streets: whole non-arterial rows/columns, alternating directions."""
    street_rows = np.flatnonzero(~g.art_rows)
    street_cols = np.flatnonzero(~g.art_cols)
    n_ow = max(1, round(oneway_fraction * (len(street_rows) + len(street_cols)) / 2))
    for k, r in enumerate(rng.choice(street_rows, size=min(n_ow, len(street_rows)), replace=False)):
        m = plain & g.horizontal & (g.seg_row == r)
        g.oneway[m], g.reverse[m] = True, bool(k % 2)
    for k, c in enumerate(rng.choice(street_cols, size=min(n_ow, len(street_cols)), replace=False)):
        m = plain & ~g.horizontal & (g.seg_col == c)
        g.oneway[m], g.reverse[m] = True, bool(k % 2)


def _campuses(g: _Grid, rng: np.random.Generator, kinds: list[str], size_m: float) -> list[int]:
    """Campuses: an interior grid node becomes the campus centre, its streets become lanes and
    the four neighbours it connects to are the gates; one or two of those lanes are closed.
    Returns the campus centres."""
    col, row = g.col, g.row
    n_campus = max(1, round((size_m / 1000.0) ** 2 / 3.0))
    inner = (col > 1) & (col < g.nx - 2) & (row > 1) & (row < g.ny - 2)
    inner &= ~g.art_rows[row] & ~g.art_cols[col]
    if g.river_row is not None:
        inner &= np.abs(row - g.river_row - 0.5) > 1.5
    campus_centres: list[int] = []
    for c in rng.permutation(np.flatnonzero(inner)):
        if len(campus_centres) >= n_campus:
            break
        if any(abs(col[c] - col[o]) <= 2 and abs(row[c] - row[o]) <= 2 for o in campus_centres):
            continue
        campus_centres.append(int(c))
        touching = np.flatnonzero((g.seg_a == c) | (g.seg_b == c))
        g.keep[touching] = True
        g.oneway[touching] = False
        g.cls[touching] = "lane"
        closed = rng.choice(touching, size=int(rng.integers(0, 3)), replace=False)
        g.keep[closed] = False
        kinds[c] = "campus"
        for s in touching:
            if g.keep[s]:
                kinds[int(g.seg_a[s] + g.seg_b[s] - c)] = "campus_gate"
    return campus_centres


def _estates(
    g: _Grid,
    rng: np.random.Generator,
    kinds: list[str],
    campus_centres: list[int],
    estate_fraction: float,
) -> _Extra:
    """Estates: a block with one gate in the middle of one of its sides and a lane to the
    inside. Returns the gate and inside nodes and the segments through them."""
    nx, ny, col, row, ids = g.nx, g.ny, g.col, g.row, g.ids
    extra = _Extra()
    n_nodes = nx * ny
    used = np.zeros(len(g.seg_a), bool)
    campus_cells = {
        (int(col[c]) + di, int(row[c]) + dj)
        for c in campus_centres
        for di in (-1, 0)
        for dj in (-1, 0)
    }
    n_cells = (nx - 1) * (ny - 1)
    n_estates = round(estate_fraction * n_cells)
    seg_lookup = {
        (int(a), int(b)): s for s, (a, b) in enumerate(zip(g.seg_a, g.seg_b, strict=True))
    }
    grid_xy = g.xy.reshape(-1, 2)
    estates = 0
    for cell in rng.permutation(n_cells):
        if estates >= n_estates:
            break
        ci, cj = int(cell % (nx - 1)), int(cell // (nx - 1))
        if (ci, cj) in campus_cells or cj == g.river_row:  # no estates in the river
            continue
        corners = [ids[cj, ci], ids[cj, ci + 1], ids[cj + 1, ci], ids[cj + 1, ci + 1]]
        sides = [(corners[0], corners[1]), (corners[2], corners[3])]
        sides += [(corners[0], corners[2]), (corners[1], corners[3])]
        options = [seg_lookup[(int(a), int(b))] for a, b in sides]
        options = [s for s in options if g.keep[s] and not used[s] and g.cls[s] != "bridge"]
        if not options:
            continue
        side = int(rng.choice(options))
        used[side] = True
        g.keep[side] = False  # replaced by two halves through the gate
        a, b = int(g.seg_a[side]), int(g.seg_b[side])
        gate, inside = n_nodes, n_nodes + 1
        n_nodes += 2
        pa, pb = grid_xy[a], grid_xy[b]
        centre = np.mean(grid_xy[corners], axis=0)
        extra.xy.append(np.stack([(pa + pb) / 2.0, centre + rng.uniform(-10, 10, 2)]))
        kinds += ["estate_gate", "estate"]
        cls, ow, rev = str(g.cls[side]), bool(g.oneway[side]), bool(g.reverse[side])
        extra.a += [a, gate, gate]
        extra.b += [gate, b, inside]
        extra.cls += [cls, cls, "lane"]
        extra.oneway += [ow, ow, False]
        extra.reverse += [rev, rev, False]
        extra.name += [str(g.name[side]), str(g.name[side]), ""]
        estates += 1
    return extra


def _directed(
    a: NDArray[np.int64], b: NDArray[np.int64], ow: NDArray[np.bool_], rev: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Directed (src, dst, segment) arrays: two-way segments give both directions."""
    seg = np.arange(len(a))
    fwd = ~ow | ~rev
    back = ~ow | rev
    src = np.concatenate([a[fwd], b[back]])
    dst = np.concatenate([b[fwd], a[back]])
    return src, dst, np.concatenate([seg[fwd], seg[back]])


def _assemble(
    pts: NDArray[np.float64],
    kinds: NDArray[np.object_],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    cls: NDArray[np.object_],
    ow: NDArray[np.bool_],
    rev: NDArray[np.bool_],
    origin_lat: float,
    origin_lon: float,
    river_y: float | None,
    names: NDArray[np.object_],
) -> City:
    """Make the graph strongly connected, reindex the surviving nodes and build the City."""
    n = len(pts)
    ow = ow.copy()
    for attempt in range(2):
        src, dst, seg = _directed(a, b, ow, rev)
        graph = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
        _, labels = connected_components(graph, directed=True, connection="strong")
        main = np.bincount(labels).argmax()
        inside = labels == main
        if inside.all() or attempt == 1:
            break
        # First repair: a one-way street touching a cut-off node becomes two-way.
        ow &= inside[a] & inside[b]
    keep_e = inside[src] & inside[dst]
    new_id = np.cumsum(inside) - 1
    src, dst, seg = new_id[src[keep_e]], new_id[dst[keep_e]], seg[keep_e]
    order = np.lexsort((dst, src))
    src, dst, seg = src[order], dst[order], seg[order]
    xy = np.ascontiguousarray(pts[inside], dtype=np.float64)
    length = np.hypot(*(xy[dst] - xy[src]).T)
    return City(
        origin_lat=origin_lat,
        origin_lon=origin_lon,
        node_xy_m=xy,
        node_lonlat=xy_to_lonlat(xy, origin_lat, origin_lon),
        edge_src=src.astype(np.int32),
        edge_dst=dst.astype(np.int32),
        edge_length_m=length.astype(np.float64),
        edge_class=cls[seg],
        edge_oneway=ow[seg].astype(np.bool_),
        node_kind=kinds[inside],
        river_y_m=river_y,
        edge_name=names[seg],
    )
