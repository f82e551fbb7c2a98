"""The simulator's readers as deployment files, and deployment files as simulated readers.

The file format and its reader are :mod:`citymap.reader_files` (what ``tagtrail readers
import`` reads); this module converts between it and :class:`~simulators.readers.SimReader`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from citymap.network import City
from citymap.reader_files import COLUMNS, project, snap_to_junctions
from simulators.readers import SimReader


def readers_table(readers: list[SimReader]) -> pd.DataFrame:
    """The deployment table of simulated readers (the columns above)."""
    return pd.DataFrame({
        "reader_id": [r.reader_id for r in readers],
        "lon": [round(r.lon, 8) for r in readers],
        "lat": [round(r.lat, 8) for r in readers],
        "protocol": [r.protocol for r in readers],
        "antennas": [r.antennas for r in readers],
        "antenna_headings": [list(r.antenna_heading_deg) for r in readers],
        "range_m": [round(r.range_m, 2) for r in readers],
        "miss_rate": [round(r.miss_rate, 4) for r in readers],
        "clock_offset_s": [round(r.clock_offset_s, 6) for r in readers],
        "clock_drift_ppm": [round(r.clock_drift_ppm, 3) for r in readers],
    })  # fmt: skip


def write_readers(readers: list[SimReader], path: str | Path) -> None:
    """Write readers as CSV (``.csv``) or GeoJSON (``.geojson`` / ``.json``)."""
    table = readers_table(readers)
    if str(path).lower().endswith((".geojson", ".json")):
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
                "properties": {k: row[k] for k in COLUMNS if k not in ("lon", "lat")},
            }
            for row in table.to_dict("records")
        ]
        doc = {"type": "FeatureCollection", "features": features}
        Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return
    out = table.assign(
        antenna_headings=[";".join(f"{h:g}" for h in hs) for hs in table["antenna_headings"]]
    )
    out.to_csv(path, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


def sim_readers(table: pd.DataFrame, city: City) -> list[SimReader]:
    """Readers of a deployment table placed on ``city`` (snapped to the nearest junction)."""
    xy = project(table[["lon", "lat"]].to_numpy(), city.origin_lat, city.origin_lon)
    nodes = snap_to_junctions(city.node_xy_m, city.node_kind, xy)
    out = []
    rows: list[dict[Any, Any]] = table.to_dict("records")
    for k, row in enumerate(rows):
        headings = tuple(float(h) for h in row["antenna_headings"]) or (0.0,)
        antennas = int(row["antennas"])
        out.append(
            SimReader(
                reader_id=str(row["reader_id"]),
                node=int(nodes[k]),
                x_m=float(xy[k, 0]),
                y_m=float(xy[k, 1]),
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                antennas=antennas,
                antenna_heading_deg=headings[:antennas],
                protocol=str(row["protocol"]),
                range_m=float(row["range_m"]),
                miss_rate=float(row["miss_rate"]),
                clock_offset_s=float(row["clock_offset_s"]),
                clock_drift_ppm=float(row["clock_drift_ppm"]),
            )
        )
    return out
