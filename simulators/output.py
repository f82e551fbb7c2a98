"""A run written to a directory: what the readers sent, and the truth behind it.

Layout of ``--out DIR`` (every file is a pure function of the options: same seed, same bytes)::

    roads.npz                     the road network (citymap.network_files, version 1)
    readers.csv, readers.geojson  the deployment (simulators.deployments), same as an import
    ports.json                    serial readers: protocol and active-frame device id per reader
    emitted/<protocol>/<reader_id>.bin    serial readers: the raw byte stream (frames, garbage)
    emitted/<protocol>/<reader_id>.jsonl  networked readers: one MQTT payload per line, in
                                          publish order (topic <prefix>/raw/<protocol>/<id>)
    truth/positions.parquet       bike_id, trip_id, t_us, x_m, y_m, lon, lat, edge, speed_mps,
                                  tag_id, tag_active, tag_present: each moving bike every second
    truth/passages.parquet        every true passage (heard or not) with its closest approach
    truth/reads.parquet           every read with reader time and true time
    truth/trips.parquet, truth/visits.parquet   trips and their true node paths with times
    truth/bikes.parquet, truth/thefts.parquet, truth/outages.parquet
    summary.json                  counts per protocol, thefts, passages
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from citymap.network import City
from citymap.network_files import save_city
from simulators.deployments import write_readers
from simulators.emit import device_ids
from simulators.fleet import Bike, Theft
from simulators.readers import SERIAL_PROTOCOLS, SimReader
from simulators.scenario import SimResult


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """One small table, zstd-compressed."""
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="zstd")


class RowGroupWriter:
    """Appends tables to one Parquet file in row groups of exactly ``rows_per_group`` rows.

    A Parquet row group ends with every ``write_table`` call, so writing each chunk as it comes
    would make the file's bytes depend on the chunk size; buffering to a fixed group size
    makes them depend only on the rows.
    """

    def __init__(self, path: Path, *, rows_per_group: int = 1 << 20) -> None:
        """Open nothing yet: the schema comes with the first table."""
        self.path = path
        self.rows_per_group = rows_per_group
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        """Buffer ``table``; write every full row group."""
        self._schema = self._schema or table.schema
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= self.rows_per_group:
            self._flush(self.rows_per_group)

    def _flush(self, rows: int) -> None:
        merged = pa.concat_tables(self._pending)
        if self._writer is None:
            # Dictionary pages only where values repeat; floats and times would just fall back.
            self._writer = pq.ParquetWriter(self.path, self._schema, compression="zstd",
                                            use_dictionary=_DICTIONARY_COLUMNS)  # fmt: skip
        self._writer.write_table(merged.slice(0, rows), row_group_size=self.rows_per_group)
        rest = merged.slice(rows)
        self._pending, self._pending_rows = [rest], rest.num_rows

    def close(self) -> None:
        """Write the last, short row group and finish the file (an empty file if no rows)."""
        if self._schema is None:
            return
        if self._pending_rows or self._writer is None:
            self._flush(self._pending_rows)
        if self._writer is not None:
            self._writer.close()


_DICTIONARY_COLUMNS = ["tag_id", "kind", "reader_id", "bike_id", "trip_id", "edge", "node"]


def positions_table(
    city: City, traj: pd.DataFrame, tag_names: pa.Array, trip_offset: int
) -> pa.Table:
    """Ground-truth positions as written: trajectories columns (tag codes as tag ids, trip ids
    made global) plus lon/lat."""
    lonlat = city.to_lonlat(np.stack([traj["x_m"].to_numpy(), traj["y_m"].to_numpy()], 1))
    columns = {c: traj[c].to_numpy() for c in traj.columns}
    columns["trip_id"] = (columns["trip_id"] + trip_offset).astype(np.int32)
    table = pa.table({**columns, "lon": lonlat[:, 0], "lat": lonlat[:, 1]})
    tags = tag_names.take(pa.array(columns["tag_id"]))  # in Arrow: no Python string per row
    return table.set_column(table.schema.get_field_index("tag_id"), "tag_id", tags)


def write_world(out: Path, city: City, readers: list[SimReader]) -> None:
    """Roads, deployment files and the serial port map."""
    (out / "truth").mkdir(parents=True, exist_ok=True)
    save_city(city, out / "roads.npz")
    write_readers(readers, out / "readers.csv")
    write_readers(readers, out / "readers.geojson")
    devices = device_ids([r.reader_id for r in readers])
    ports = {r.reader_id: {"protocol": r.protocol, "device_id": devices[r.reader_id]}
             for r in readers if r.protocol in SERIAL_PROTOCOLS}  # fmt: skip
    (out / "ports.json").write_text(json.dumps(ports, indent=1, sort_keys=True) + "\n")


def write_population(
    out: Path, bikes: list[Bike], thefts: list[Theft], outages: pd.DataFrame
) -> None:
    """``truth/bikes.parquet``, ``thefts.parquet`` and ``outages.parquet``."""
    truth = out / "truth"
    write_parquet(pd.DataFrame([dataclasses.asdict(b) for b in bikes]), truth / "bikes.parquet")
    frame = pd.DataFrame(
        [dataclasses.asdict(t) for t in thefts],
        columns=[f.name for f in dataclasses.fields(Theft)],
    )
    write_parquet(frame, truth / "thefts.parquet")
    write_parquet(outages, truth / "outages.parquet")


def summary(result: SimResult, per_protocol: Counter[str]) -> dict[str, Any]:
    """Counts for the end-of-run report (and summary.json)."""
    p = result.passages
    by_reader = {r.reader_id: r.protocol for r in result.readers}
    reads_per_protocol = result.reads["reader_id"].astype(str).map(by_reader).value_counts()
    return {
        "seed": result.options.seed,
        "bikes": len(result.population.bikes),
        "readers": len(result.readers),
        "road_nodes": result.city.n_nodes,
        "road_edges": result.city.n_edges,
        "trips": len(result.population.trips),
        "thefts": len(result.population.thefts),
        "thefts_by_van": sum(t.by_van for t in result.population.thefts),
        "positions": result.positions,
        "passages": len(p),
        "passages_heard": int(p["heard"].sum()) if len(p) else 0,
        "reads": len(result.reads),
        "reads_per_protocol": {k: int(v) for k, v in sorted(reads_per_protocol.items())},
        "messages_per_protocol": dict(sorted(per_protocol.items())),
        "outages": len(result.outages),
    }


def write_summary(out: Path, data: dict[str, Any]) -> None:
    """``summary.json`` (sorted keys, so it is reproducible too)."""
    (out / "summary.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
