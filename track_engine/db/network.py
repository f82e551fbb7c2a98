"""The road network and its readers as the engine (and the API's route stitching) load
them: node and edge arrays, each reader's node and the miss rate path choice weighs its
silence by, clock offsets, and a digest that says when the rates changed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg

from track_engine.places import PROTOCOL_RANGE_M
from track_engine.roads import ReaderPaths, RoadGraph, precompute_reader_paths
from track_engine.route_zones import ReadZone
from track_engine.way_prior import WayPrior


@dataclass(frozen=True)
class NetworkArrays:
    """The active road network and the readers on it, as arrays for the engine's RoadGraph."""

    network_id: int
    node_xy_m: np.ndarray
    node_lonlat: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_length_m: np.ndarray
    readers: pd.DataFrame  # reader_id, node_id, lon, lat, x_m, y_m, antennas, miss_rate, protocol
    edge_name: np.ndarray | None = None  # street name per edge, "" for none (None: not loaded)
    way_prior: WayPrior | None = None  # the fleet's way prior (track_engine.db.way_priors)

    def edge_names(self) -> np.ndarray:
        """Each edge's street name, ``""`` where it has none."""
        if self.edge_name is None:
            return np.full(len(self.edge_src), "", dtype=object)
        return self.edge_name

    def reader_addresses(self) -> dict[str, str]:
        """Each reader's address: the names of the streets meeting at its node, the busiest
        first ("Jiefang Road × 3rd Street"); ``""`` where none of them has a name."""
        return node_addresses(
            self.edge_src, self.edge_dst, self.edge_names(), dict(self.reader_nodes())
        )

    def road_graph(self) -> RoadGraph:
        """The engine's routing graph of these arrays."""
        return RoadGraph.from_arrays(
            node_lonlat=self.node_lonlat,
            node_xy_m=self.node_xy_m,
            edge_src=self.edge_src,
            edge_dst=self.edge_dst,
            edge_length_m=self.edge_length_m,
        )

    def reader_nodes(self) -> dict[str, int]:
        """Each reader's road node."""
        return {
            str(r): int(n)
            for r, n in zip(self.readers["reader_id"], self.readers["node_id"], strict=True)
        }

    def miss_rates(self) -> dict[str, float]:
        """Each reader's miss rate as loaded (learned where known, see :func:`load_network`)."""
        return dict(
            zip(
                self.readers["reader_id"].astype(str).tolist(),
                self.readers["miss_rate"].astype(float).tolist(),
                strict=True,
            )
        )

    def reader_ranges_m(self) -> dict[str, float]:
        """How far readers of long-range protocols hear a tag (``places.PROTOCOL_RANGE_M``):
        their read zones, for places and the clone test. Others are not listed."""
        if "protocol" not in self.readers:
            return {}
        return {
            str(r): PROTOCOL_RANGE_M[str(p)]
            for r, p in zip(self.readers["reader_id"], self.readers["protocol"], strict=True)
            if str(p) in PROTOCOL_RANGE_M
        }

    def reader_zones(self) -> dict[str, ReadZone]:
        """Each surveyed reader's read zone (its pole and read range, migration 0170): where
        it reaches a road past its node, a read may come from that road
        (:mod:`track_engine.route_zones`). Readers without a surveyed range are not listed."""
        if "range_m" not in self.readers:
            return {}
        return {
            str(r): ReadZone(float(x), float(y), float(reach))
            for r, x, y, reach in zip(
                self.readers["reader_id"],
                self.readers["x_m"],
                self.readers["y_m"],
                self.readers["range_m"],
                strict=True,
            )
            if reach is not None and not pd.isna(reach)
        }

    def reader_paths(self, graph: RoadGraph) -> ReaderPaths:
        """Paths between the readers on ``graph`` (from :meth:`road_graph`), each reader's
        silence weighed by its miss rate in path choice."""
        paths = precompute_reader_paths(graph, self.reader_nodes(), miss_rate=self.miss_rates())
        return dataclasses.replace(paths, way_prior=self.way_prior) if self.way_prior else paths


# The miss rate path choice uses: learned from the passages (track_engine.db.reader_miss_rates)
# where there was evidence, the registry's (survey / operator) figure otherwise.
EFFECTIVE_MISS_RATE = "coalesce(miss_rate_learned, miss_rate)"


def load_network(conn: psycopg.Connection, *, learned: bool = True) -> NetworkArrays | None:
    """Load the active road network (node ids are dense 0..N-1) and its readers.

    The readers' ``miss_rate`` is the learned one where there is one (``learned=False``: the
    registry's figure, the prior of the learning job)."""
    miss_rate = EFFECTIVE_MISS_RATE if learned else "miss_rate"
    network_id = active_network_id(conn)
    if network_id is None:
        return None
    nodes = np.array(
        conn.execute(
            "SELECT x_m, y_m, lon, lat FROM road_nodes WHERE network_id = %s ORDER BY node_id",
            (network_id,),
        ).fetchall(),
        dtype=np.float64,
    ).reshape(-1, 4)
    edges = conn.execute(
        "SELECT src, dst, length_m, coalesce(name, '') FROM road_edges WHERE network_id = %s "
        "ORDER BY edge_id",
        (network_id,),
    ).fetchall()
    edge_arr = np.array([e[:3] for e in edges], dtype=np.float64).reshape(-1, 3)
    edge_name = np.array([e[3] for e in edges], dtype=object)
    readers = pd.DataFrame(
        conn.execute(
            f"""SELECT reader_id, node_id, lon, lat, x_m, y_m, antennas,
                       {miss_rate} AS miss_rate, protocol, range_m
               FROM readers WHERE network_id = %s ORDER BY reader_id""",
            (network_id,),
        ).fetchall(),
        columns=[
            "reader_id",
            "node_id",
            "lon",
            "lat",
            "x_m",
            "y_m",
            "antennas",
            "miss_rate",
            "protocol",
            "range_m",
        ],
    )
    return NetworkArrays(
        network_id=network_id,
        node_xy_m=nodes[:, 0:2].copy(),
        node_lonlat=nodes[:, 2:4].copy(),
        edge_src=edge_arr[:, 0].astype(np.int32),
        edge_dst=edge_arr[:, 1].astype(np.int32),
        edge_length_m=edge_arr[:, 2].copy(),
        readers=readers,
        edge_name=edge_name,
        way_prior=load_way_prior(conn) if learned else None,
    )


def load_way_prior(conn: psycopg.Connection) -> WayPrior | None:
    """The stored fleet way prior (migration 0150); None when no run stored one."""
    rows = conn.execute(
        "SELECT from_reader, to_reader, via, rides FROM way_priors WHERE rides > 0"
    ).fetchall()
    if not rows:
        return None
    rides: dict[tuple[str, str], dict[tuple[str, ...], float]] = {}
    for a, b, via, n in rows:
        rides.setdefault((str(a), str(b)), {})[tuple(str(r) for r in via)] = float(n)
    return WayPrior(rides)


def network_reader_rates(conn: psycopg.Connection, network_id: int) -> dict[str, tuple[int, float]]:
    """Each reader of network ``network_id``: its road node and the miss rate path choice
    uses (learned, else the registry's)."""
    rows = conn.execute(
        f"SELECT reader_id, node_id, {EFFECTIVE_MISS_RATE} FROM readers WHERE network_id = %s",
        (network_id,),
    ).fetchall()
    return {str(r): (int(n), float(m)) for r, n, m in rows}


def network_miss_rates_stamp(conn: psycopg.Connection, network_id: int) -> str:
    """A digest of :func:`network_reader_rates` and of when the way prior was learned: it
    changes when any reader's node or rate does, a reader comes or goes (a learning run, an
    import), or the way-prior job stores a new prior, so that a holder of the loaded network
    knows when to look again."""
    row = conn.execute(
        f"""SELECT md5(coalesce(string_agg(
                reader_id || '@' || node_id::text || '=' || {EFFECTIVE_MISS_RATE}::text, ','
                ORDER BY reader_id), '')
                || coalesce((SELECT max(learned_at)::text FROM way_priors), ''))
            FROM readers WHERE network_id = %s""",
        (network_id,),
    ).fetchone()
    return "" if row is None else str(row[0])


def reader_clock_offsets_ms(conn: psycopg.Connection) -> dict[str, float]:
    """Each reader's estimated clock offset (reader minus true time), in milliseconds."""
    return {
        str(r): float(o) for r, o in conn.execute("SELECT reader_id, clock_offset_ms FROM readers")
    }


def active_network_id(conn: psycopg.Connection) -> int | None:
    """Id of the road network routes are drawn on, or None before any is loaded."""
    row = conn.execute("SELECT network_id FROM road_networks WHERE active").fetchone()
    return None if row is None else int(row[0])


def node_addresses(
    edge_src: np.ndarray, edge_dst: np.ndarray, edge_name: np.ndarray, nodes: dict[str, int]
) -> dict[str, str]:
    """For each key, the names of the streets meeting at its node joined with " × " (at most
    two: the ones with the most edges there, then by name); ``""`` where none is named."""
    wanted = set(nodes.values())
    at_node: dict[int, dict[str, int]] = {}
    for s, d, name in zip(edge_src.tolist(), edge_dst.tolist(), edge_name.tolist(), strict=True):
        if not name:
            continue
        for node in (s, d):
            if node in wanted:
                counts = at_node.setdefault(node, {})
                counts[name] = counts.get(name, 0) + 1
    return {key: address_of(at_node.get(node, {})) for key, node in nodes.items()}


def address_of(edges_per_name: dict[str, int]) -> str:
    """An address from the street names at a node and how many edges of each meet there: the
    two with the most edges (then by name), joined with " × "; ``""`` for none."""
    best = sorted(edges_per_name, key=lambda n: (-edges_per_name[n], n))[:2]
    return " × ".join(best)
