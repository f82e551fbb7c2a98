"""Reader deployment files (CSV and GeoJSON): what ``tagtrail readers import`` reads (the
simulator writes them for its own readers: :mod:`simulators.deployments`).

Columns (CSV header / GeoJSON feature properties; position from lon/lat or the Point):

=================  ========================================================================
reader_id          unique name, as in the MQTT topic / gateway configuration
lon, lat           surveyed position, WGS84 degrees
protocol           impinj-iot, zebra-iotc, r2000 or tagtrail-active
antennas           1 or 2
antenna_headings   degrees clockwise from north, ``;``-separated in CSV, a list in GeoJSON
range_m            optional: read range (default by protocol)
miss_rate          optional: share of passing tags never heard (default 0.3)
clock_offset_s     optional: reader clock minus true time, seconds (default 0)
clock_drift_ppm    optional (default 0)
=================  ========================================================================
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from citymap.network import EARTH_RADIUS_M, reader_candidates

COLUMNS = ("reader_id", "lon", "lat", "protocol", "antennas", "antenna_headings", "range_m",
           "miss_rate", "clock_offset_s", "clock_drift_ppm")  # fmt: skip
# The protocols a deployment file may name, each with its default read range.
_DEFAULT_RANGE_M = {"impinj-iot": 6.0, "zebra-iotc": 6.0, "r2000": 4.5, "tagtrail-active": 60.0}
PROTOCOLS = tuple(_DEFAULT_RANGE_M)


class ReaderFileError(ValueError):
    """A reader file that cannot be used (missing column, bad value, unknown protocol)."""


def read_readers(path: str | Path) -> pd.DataFrame:
    """Read and validate a reader file; optional columns get their defaults."""
    table = _read_table(path)
    missing = {"reader_id", "lon", "lat", "protocol"} - set(table.columns)
    if missing:
        raise ReaderFileError(f"{path}: missing columns {sorted(missing)}")
    bad = sorted(set(table["protocol"]) - set(PROTOCOLS))
    if bad:
        raise ReaderFileError(f"{path}: unknown protocols {bad}; known: {list(PROTOCOLS)}")
    if table["reader_id"].duplicated().any():
        raise ReaderFileError(f"{path}: duplicate reader_id")
    if "antenna_headings" not in table.columns:
        table["antenna_headings"] = [[] for _ in range(len(table))]
    if "antennas" not in table.columns:
        table["antennas"] = [max(1, len(h)) for h in table["antenna_headings"]]
    table["range_m"] = table.get("range_m", table["protocol"].map(_DEFAULT_RANGE_M))
    defaults = {"miss_rate": 0.3, "clock_offset_s": 0.0, "clock_drift_ppm": 0.0}
    for col, value in defaults.items():
        table[col] = table[col].fillna(value) if col in table.columns else value
    if not table["miss_rate"].between(0.0, 1.0, inclusive="left").all():
        raise ReaderFileError(f"{path}: miss_rate must be in [0, 1)")
    if not table["antennas"].between(1, 8).all():
        raise ReaderFileError(f"{path}: antennas must be 1-8")
    return table[list(COLUMNS)].reset_index(drop=True)


def _read_table(path: str | Path) -> pd.DataFrame:
    """The file's rows as written (GeoJSON properties or CSV columns), headings as lists."""
    try:
        if str(path).lower().endswith((".geojson", ".json")):
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            rows = []
            for f in doc["features"]:
                lon, lat = f["geometry"]["coordinates"][:2]
                rows.append({**f["properties"], "lon": lon, "lat": lat})
            return pd.DataFrame(rows)
        table = pd.read_csv(path, dtype={"reader_id": str, "antenna_headings": str})
        if "antenna_headings" in table.columns:
            table["antenna_headings"] = [
                [float(h) for h in str(v).split(";") if h.strip()] if pd.notna(v) else []
                for v in table["antenna_headings"]
            ]
        return table
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReaderFileError(f"{path}: {exc}") from exc


def project(lonlat: np.ndarray, origin_lat: float, origin_lon: float) -> np.ndarray:
    """lon/lat degrees (..., 2) to east/north meters about the origin (inverse of the city's)."""
    ll = np.asarray(lonlat, np.float64)
    x = np.radians(ll[..., 0] - origin_lon) * EARTH_RADIUS_M * np.cos(np.radians(origin_lat))
    y = np.radians(ll[..., 1] - origin_lat) * EARTH_RADIUS_M
    return np.stack([x, y], -1)


def snap_nodes(node_xy_m: np.ndarray, candidates: np.ndarray, xy_m: np.ndarray) -> np.ndarray:
    """Nearest candidate node for each position, and nothing farther than the nearest."""
    tree = cKDTree(node_xy_m[candidates])
    _, idx = tree.query(xy_m)
    return np.asarray(candidates[np.asarray(idx, np.int64)], np.int64)


def snap_to_junctions(node_xy_m: np.ndarray, node_kind: np.ndarray, xy_m: np.ndarray) -> np.ndarray:
    """The reader-candidate node (a consolidated junction or a gate, never a bend point) nearest
    each surveyed position: what the deployment registry records as a reader's node.

    Raises :class:`ReaderFileError` when the network has no such node."""
    candidates = reader_candidates(node_kind)
    if not len(candidates):
        raise ReaderFileError("the road network has no junction to put a reader on")
    return snap_nodes(node_xy_m, candidates, xy_m)
