"""Roadside readers placed on a simulated city.

Placement follows how real deployments spend a limited budget: first the junctions no route can
avoid (bridge heads, then arterial junctions), then the gates of housing estates and campuses
(where bikes are parked, and stolen), then other junctions, until ``fraction`` of the candidate
nodes (junctions and gates; never the inside of an estate or campus) carry a reader.

A reader stands a few meters from the junction centre (on a pole at the corner); its surveyed
position is that pole, not the node. Readers on a main road get two antennas facing opposite
ways along it, so the antenna that hears a tag tells its direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import City

DEFAULT_PROTOCOL = "impinj-iot"
PROTOCOLS = ("impinj-iot", "r2000", "zebra-iotc", "tagtrail-active")


@dataclass(frozen=True)
class _Profile:
    range_m: tuple[float, float]
    miss_rate: tuple[float, float]
    networked: bool  # networked readers keep NTP time; serial ones are stamped by the gateway


_PROFILES: dict[str, _Profile] = {
    "impinj-iot": _Profile((4.0, 8.0), (0.02, 0.10), True),
    "zebra-iotc": _Profile((4.0, 8.0), (0.02, 0.10), True),
    "r2000": _Profile((3.0, 6.0), (0.04, 0.15), False),
    "tagtrail-active": _Profile((20.0, 40.0), (0.005, 0.03), True),
}


@dataclass(frozen=True)
class SimReader:
    """One simulated reader: where it stands, what it hears and how wrong its clock is.

    ``antenna_heading_deg`` holds one compass heading (degrees clockwise from north) per
    antenna. ``miss_rate`` is the probability that a passing tag is not heard at all on one
    passage. The reader clock reads ``true + clock_offset_s + clock_drift_ppm * 1e-6 * elapsed``.
    """

    reader_id: str
    node: int
    x_m: float
    y_m: float
    lat: float
    lon: float
    antennas: int
    antenna_heading_deg: tuple[float, ...]
    protocol: str
    range_m: float
    miss_rate: float
    clock_offset_s: float
    clock_drift_ppm: float


def candidate_nodes(city: City) -> np.ndarray:
    """Nodes that may carry a reader: junctions and gates (not estate or campus insides)."""
    kinds = city.node_kind
    return np.flatnonzero((kinds != "estate") & (kinds != "campus"))


def _priority(city: City, rng: np.random.Generator) -> np.ndarray:
    """Candidate nodes in placement order: bridge heads, arterials, gates, the rest."""
    n = city.n_nodes
    cls = city.edge_class
    ends = np.concatenate([city.edge_src, city.edge_dst])
    cls2 = np.concatenate([cls, cls])
    bridge = np.zeros(n, bool)
    arterial = np.zeros(n, bool)
    bridge[ends[cls2 == "bridge"]] = True
    arterial[ends[cls2 == "arterial"]] = True
    gate = (city.node_kind == "estate_gate") | (city.node_kind == "campus_gate")
    rank = np.select([bridge, arterial, gate], [0, 1, 2], default=3).astype(np.float64)
    cand = candidate_nodes(city)
    key = rank[cand] + rng.random(len(cand))  # random order within each rank
    return cand[np.argsort(key, kind="stable")]


def _main_heading(city: City, node: int) -> tuple[float, bool]:
    """Heading of the most important road through ``node`` and whether it is a main road."""
    out = np.flatnonzero((city.edge_src == node) | (city.edge_dst == node))
    order = {"bridge": 0, "arterial": 1, "street": 2, "lane": 3}
    best = min(out, key=lambda e: (order[str(city.edge_class[e])], int(e)))
    d = city.node_xy_m[city.edge_dst[best]] - city.node_xy_m[city.edge_src[best]]
    heading = float(np.degrees(np.arctan2(d[0], d[1])) % 180.0)
    return heading, str(city.edge_class[best]) in ("bridge", "arterial")


def place_readers(
    city: City,
    *,
    seed: int,
    fraction: float = 0.5,
    protocol_mix: dict[str, float] | None = None,
) -> list[SimReader]:
    """Place readers on ``round(fraction * len(candidate_nodes(city)))`` nodes.

    ``protocol_mix`` maps protocol name to weight (default: all ``"impinj-iot"``). The same
    seed gives the same readers. Reader ids are ``R0001``, ``R0002``, ... in placement order.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within [0, 1]")
    mix = protocol_mix or {DEFAULT_PROTOCOL: 1.0}
    unknown = set(mix) - set(_PROFILES)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}; known: {list(PROTOCOLS)}")
    rng = np.random.default_rng(seed)
    order = _priority(city, rng)
    count = round(fraction * len(order))
    nodes = order[:count]
    names = sorted(mix)
    weights = np.asarray([mix[k] for k in names], dtype=np.float64)
    protocols = rng.choice(len(names), size=count, p=weights / weights.sum())
    angle = rng.uniform(0.0, 2.0 * np.pi, size=count)
    offset_m = rng.uniform(1.5, 3.5, size=count)
    pos = city.node_xy_m[nodes] + offset_m[:, None] * np.stack([np.sin(angle), np.cos(angle)], 1)
    lonlat = city.to_lonlat(pos)
    u_range = rng.random(count)
    u_miss = rng.random(count)
    bad_clock = rng.random(count) < 0.1
    offset_s = np.where(
        bad_clock, rng.uniform(-30.0, 30.0, size=count), rng.normal(0.0, 0.05, size=count)
    )
    drift_ppm = rng.normal(0.0, 15.0, size=count)
    two_on_side_street = rng.random(count) < 0.3
    readers = []
    for k in range(count):
        node = int(nodes[k])
        prof = _PROFILES[names[protocols[k]]]
        heading, main_road = _main_heading(city, node)
        if main_road or two_on_side_street[k]:
            headings: tuple[float, ...] = (round(heading, 1), round(heading + 180.0, 1))
        else:
            headings = (round(heading, 1),)
        offset = float(offset_s[k]) if prof.networked else abs(float(offset_s[k])) + 0.05
        readers.append(
            SimReader(
                reader_id=f"R{k + 1:04d}",
                node=node,
                x_m=float(pos[k, 0]),
                y_m=float(pos[k, 1]),
                lat=float(lonlat[k, 1]),
                lon=float(lonlat[k, 0]),
                antennas=len(headings),
                antenna_heading_deg=headings,
                protocol=names[protocols[k]],
                range_m=float(prof.range_m[0] + u_range[k] * np.diff(prof.range_m)[0]),
                miss_rate=float(prof.miss_rate[0] + u_miss[k] * np.diff(prof.miss_rate)[0]),
                clock_offset_s=offset,
                clock_drift_ppm=float(drift_ppm[k]),
            )
        )
    return readers
