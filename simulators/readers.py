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
import pandas as pd

from citymap.network import City, reader_candidates

DEFAULT_PROTOCOL = "impinj-iot"
PROTOCOLS = ("impinj-iot", "r2000", "zebra-iotc", "tagtrail-active", "llrp")


@dataclass(frozen=True)
class _Profile:
    range_m: tuple[float, float]
    miss_rate: tuple[float, float]
    networked: bool  # networked readers keep NTP time; serial ones are stamped by the gateway


_PROFILES: dict[str, _Profile] = {
    "impinj-iot": _Profile((4.0, 8.0), (0.02, 0.10), True),
    "zebra-iotc": _Profile((4.0, 8.0), (0.02, 0.10), True),
    "r2000": _Profile((3.0, 6.0), (0.04, 0.15), False),
    # Fixed UHF readers (Impinj, Zebra) over LLRP: the same RF as the JSON-speaking ones.
    "llrp": _Profile((4.0, 8.0), (0.02, 0.10), True),
    # 2.4 GHz active readers hear a beaconing tag 30-100 m away (open street vs. canyon).
    "tagtrail-active": _Profile((30.0, 100.0), (0.005, 0.03), False),
}
SERIAL_PROTOCOLS = frozenset({"r2000", "tagtrail-active"})
ACTIVE_PROTOCOLS = frozenset({"tagtrail-active"})


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
    """Nodes that may carry a reader: junctions and gates (not estate or campus insides, and
    not the shape points an imported road bends through)."""
    return reader_candidates(city.node_kind)


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
    best = min(out, key=lambda e: (order.get(str(city.edge_class[e]), 2), int(e)))
    d = city.node_xy_m[city.edge_dst[best]] - city.node_xy_m[city.edge_src[best]]
    heading = float(np.degrees(np.arctan2(d[0], d[1])) % 180.0)
    return heading, str(city.edge_class[best]) in ("bridge", "arterial")


def place_readers(
    city: City,
    *,
    seed: int,
    fraction: float = 0.5,
    protocol_mix: dict[str, float] | None = None,
    miss_rate: float | None = None,
) -> list[SimReader]:
    """Place readers on ``round(fraction * len(candidate_nodes(city)))`` nodes.

    ``protocol_mix`` maps protocol name to weight (default: all ``"impinj-iot"``). The same
    seed gives the same readers. Reader ids are ``R0001``, ``R0002``, ... in placement order.
    ``miss_rate`` (if given) replaces each protocol's typical range of per-reader miss rates
    with ``miss_rate`` ± 0.05 (real deployments miss 30-40% of what passes).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within [0, 1]")
    if miss_rate is not None and not 0.0 <= miss_rate < 1.0:
        raise ValueError("miss_rate must be within [0, 1)")
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
        # Serial readers have no clock of their own worth the name: the gateway stamps frames
        # on arrival, a little after the read (never before it).
        offset = float(offset_s[k]) if prof.networked else abs(float(offset_s[k])) + 0.05
        if miss_rate is None:
            miss = float(prof.miss_rate[0] + u_miss[k] * np.diff(prof.miss_rate)[0])
        else:
            miss = float(np.clip(miss_rate + (u_miss[k] - 0.5) * 0.1, 0.0, 0.99))
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
                miss_rate=miss,
                clock_offset_s=offset,
                clock_drift_ppm=float(drift_ppm[k]),
            )
        )
    return readers


def reader_count_fraction(city: City, readers: int) -> float:
    """The ``fraction`` of :func:`place_readers` that places ``readers`` readers (capped at 1)."""
    cand = len(candidate_nodes(city))
    return min(1.0, readers / cand) if cand else 0.0


OUTAGE_COLUMNS = ("reader_id", "start_us", "end_us")


def outage_schedule(
    readers: list[SimReader],
    *,
    seed: int,
    start_us: int,
    end_us: int,
    per_reader_day: float = 0.3,
    mean_minutes: float = 45.0,
) -> pd.DataFrame:
    """Outages per reader: a Poisson number (``per_reader_day`` a day) of exponential-length
    outages (mean ``mean_minutes``: power cuts, a crashed reader, a cut network cable).

    Columns reader_id, start_us, end_us (UTC µs); outages of one reader never overlap.
    """
    rng = np.random.default_rng(seed)
    days = (end_us - start_us) / 86_400e6
    count = rng.poisson(per_reader_day * days, size=len(readers))
    rd = np.repeat(np.arange(len(readers)), count)
    start = start_us + (rng.random(len(rd)) * (end_us - start_us)).astype(np.int64)
    length = (rng.exponential(mean_minutes * 60e6, size=len(rd))).astype(np.int64) + 60_000_000
    if not len(rd):
        empty = np.empty(0, np.int64)
        return pd.DataFrame(
            {"reader_id": pd.Series([], dtype=str), "start_us": empty, "end_us": empty}
        )
    order = np.lexsort((start, rd))
    rd, start = rd[order], start[order]
    end = start + length[order]
    # Merge overlapping outages of one reader. Offsetting each reader's times by reader * span
    # makes one running maximum over all rows a running maximum per reader.
    span = np.int64(end.max() - start_us + 1)
    end_key = np.maximum.accumulate(end - start_us + rd * span)
    new = np.ones(len(rd), bool)
    new[1:] = (rd[1:] != rd[:-1]) | (start[1:] - start_us + rd[1:] * span > end_key[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(rd)) - 1
    ids = np.array([r.reader_id for r in readers], dtype=object)
    return pd.DataFrame({
        "reader_id": pd.Series(ids[rd[first]], dtype=str),
        "start_us": start[first].astype(np.int64),
        "end_us": (end_key[last] - rd[last] * span + start_us).astype(np.int64),
    })  # fmt: skip


def in_outage(
    outages: pd.DataFrame, reader_ids: list[str], rd: np.ndarray, t_us: np.ndarray
) -> np.ndarray:
    """True where time ``t_us[i]`` lies in an outage of reader ``reader_ids[rd[i]]``."""
    out = np.zeros(len(t_us), bool)
    if outages.empty or not len(t_us):
        return out
    index = {r: k for k, r in enumerate(reader_ids)}
    o_rd = outages["reader_id"].map(index).to_numpy()
    known = ~pd.isna(o_rd)
    o_rd = o_rd[known].astype(np.int64)
    o_start = outages["start_us"].to_numpy(np.int64)[known]
    o_end = outages["end_us"].to_numpy(np.int64)[known]
    base = int(min(o_start.min(), np.min(t_us)))
    span = np.int64(max(int(o_end.max()), int(np.max(t_us))) - base + 1)
    # Outages of one reader never overlap, so the last one starting at or before t decides.
    key = o_rd * span + (o_start - base)
    order = np.argsort(key, kind="stable")
    key, o_end_rel = key[order], (o_end - base + o_rd * span)[order]
    q = np.asarray(rd, np.int64) * span + (np.asarray(t_us, np.int64) - base)
    pos = np.searchsorted(key, q, side="right") - 1
    ok = pos >= 0
    same_reader = ok & (key[np.maximum(pos, 0)] // span == np.asarray(rd, np.int64))
    out[same_reader] = q[same_reader] < o_end_rel[pos[same_reader]]
    return out
