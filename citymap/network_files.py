"""The road-network file: a versioned ``.npz`` the simulator (``--roads FILE``) and tools load.

Layout (format version 1; every array is a plain numpy array, no pickles)::

    format_version  int64 scalar, 1
    origin          float64 [origin_lat, origin_lon] of the east/north projection
    node_xy_m       float64 (N, 2)    node_lonlat  float64 (N, 2)    node_kind  str (N,)
    edge_src        int32 (E,)        edge_dst     int32 (E,)
    edge_length_m   float64 (E,)      edge_class   str (E,)          edge_oneway bool (E,)
    river_y_m       float64 (0,) or (1,)
    edge_name       str (E,), optional: street names ("" for none); absent in older files

The zip entries carry a fixed timestamp, so the same network always gives the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from citymap.network import City

FORMAT_VERSION = 1
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class NetworkFileError(ValueError):
    """Not a road-network file, or one of a format version this code cannot read."""


def save_city(city: City, path: str | Path) -> None:
    """Write ``city`` to ``path`` (``.npz``), byte-for-byte reproducibly."""
    arrays = {
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "origin": np.array([city.origin_lat, city.origin_lon], np.float64),
        "node_xy_m": city.node_xy_m,
        "node_lonlat": city.node_lonlat,
        "node_kind": city.node_kind.astype(str),
        "edge_src": city.edge_src,
        "edge_dst": city.edge_dst,
        "edge_length_m": city.edge_length_m,
        "edge_class": city.edge_class.astype(str),
        "edge_oneway": city.edge_oneway,
        "river_y_m": np.array([] if city.river_y_m is None else [city.river_y_m], np.float64),
    }
    if city.edge_name is not None:
        arrays["edge_name"] = city.edge_name.astype(str)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def load_city(path: str | Path) -> City:
    """Read a road-network file written by :func:`save_city`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise NetworkFileError(f"{path}: format version {version}, need {FORMAT_VERSION}")
            river = data["river_y_m"]
            return City(
                origin_lat=float(data["origin"][0]),
                origin_lon=float(data["origin"][1]),
                node_xy_m=data["node_xy_m"].astype(np.float64),
                node_lonlat=data["node_lonlat"].astype(np.float64),
                edge_src=data["edge_src"].astype(np.int32),
                edge_dst=data["edge_dst"].astype(np.int32),
                edge_length_m=data["edge_length_m"].astype(np.float64),
                edge_class=data["edge_class"].astype(object),
                edge_oneway=data["edge_oneway"].astype(np.bool_),
                node_kind=data["node_kind"].astype(object),
                river_y_m=float(river[0]) if len(river) else None,
                edge_name=data["edge_name"].astype(object) if "edge_name" in data.files else None,
            )
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise NetworkFileError(f"{path}: not a road-network file ({exc})") from exc


def load_roads(path: str | Path, *, junction_tolerance_m: float | None = None) -> City:
    """A road network from an ``.npz`` network file or OpenStreetMap data (.osm, .osm.pbf).

    OSM junctions are consolidated within ``junction_tolerance_m`` (default
    :data:`citymap.junctions.DEFAULT_TOLERANCE_M`, 0: every OSM node stays); a network file
    is loaded as it was saved.
    """
    name = str(path).lower()
    if name.endswith((".osm", ".osm.pbf", ".pbf", ".osm.bz2", ".osm.gz")):
        from citymap.junctions import DEFAULT_TOLERANCE_M
        from citymap.osm import read_osm  # osmium is only needed for OSM input

        tolerance = DEFAULT_TOLERANCE_M if junction_tolerance_m is None else junction_tolerance_m
        return read_osm(path, junction_tolerance_m=tolerance)
    return load_city(path)
