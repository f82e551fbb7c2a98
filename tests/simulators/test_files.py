from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sim_helpers import START
from typer.testing import CliRunner

from citymap.network import City
from citymap.reader_files import ReaderFileError, read_readers
from simulators.deployments import sim_readers, write_readers
from simulators.readers import SimReader, place_readers
from tagtrail.cli import app

SMALL = ["--bikes", "120", "--hours", "0.75", "--size-m", "2000", "--coverage", "0.4"]


@pytest.mark.parametrize("name", ["readers.csv", "readers.geojson"])
def test_reader_file_round_trip(city: City, tmp_path: Path, name: str) -> None:
    readers = place_readers(city, seed=2, protocol_mix={"r2000": 1, "tagtrail-active": 1})
    write_readers(readers, tmp_path / name)
    back = sim_readers(read_readers(tmp_path / name), city)
    assert [r.reader_id for r in back] == [r.reader_id for r in readers]
    assert [r.node for r in back] == [r.node for r in readers]
    for a, b in zip(readers, back, strict=True):
        assert (a.protocol, a.antennas) == (b.protocol, b.antennas)
        assert b.antenna_heading_deg == pytest.approx(a.antenna_heading_deg)
        assert (b.x_m, b.y_m) == pytest.approx((a.x_m, a.y_m), abs=0.01)
        assert b.miss_rate == pytest.approx(a.miss_rate, abs=1e-4)


def test_minimal_csv_and_errors(tmp_path: Path, readers: list[SimReader]) -> None:
    path = tmp_path / "r.csv"
    path.write_text("reader_id,lon,lat,protocol\nX1,121.151,30.051,impinj-iot\n")
    table = read_readers(path)
    assert table.loc[0, "miss_rate"] == 0.3
    assert table.loc[0, "antennas"] == 1
    path.write_text("reader_id,lon,lat,protocol\nX1,121.151,30.051,llrp\n")
    with pytest.raises(ReaderFileError, match="unknown protocols"):
        read_readers(path)
    path.write_text("reader_id,lon\nX1,121.151\n")
    with pytest.raises(ReaderFileError, match="missing columns"):
        read_readers(path)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_files_byte_for_byte(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a", "b"):
        res = runner.invoke(app, ["simulate", "--seed", "5", *SMALL, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    wanted = {"roads.npz", "readers.csv", "readers.geojson", "summary.json", "ports.json"}
    wanted |= {"truth/positions.parquet", "truth/passages.parquet", "truth/reads.parquet"}
    assert wanted <= set(a)
    protocols = {k.split("/")[1] for k in a if k.startswith("emitted/")}
    assert protocols == {"impinj-iot", "zebra-iotc", "r2000", "tagtrail-active"}
    res = runner.invoke(app, ["simulate", "--seed", "6", *SMALL, "--out", str(tmp_path / "c")])
    assert res.exit_code == 0
    assert _files(tmp_path / "c")["truth/reads.parquet"] != a["truth/reads.parquet"]
    positions = pd.read_parquet(tmp_path / "a" / "truth" / "positions.parquet")
    assert {"bike_id", "t_us", "x_m", "y_m", "lon", "lat", "tag_id"} <= set(positions.columns)
    assert (positions["t_us"] % 1_000_000 == 0).all()
    assert START.year == 2025  # the default window starts at local midnight of a fixed day


def test_files_do_not_depend_on_chunk_size_or_workers(tmp_path: Path) -> None:
    """Draws are keyed by bike and reader, results are taken in order and row groups have a
    fixed size, so neither the chunking nor the number of processes shows in the files."""
    runner = CliRunner()
    runs = {"a": ["--chunk-bikes", "100", "--workers", "2"],
            "b": ["--chunk-bikes", "1000", "--workers", "1"],
            "c": ["--chunk-bikes", "150", "--workers", "2"]}  # fmt: skip
    for name, extra in runs.items():
        # Midnight to 09:00 local: the morning peak, so most bikes of every chunk ride.
        args = ["simulate", "--seed", "8", "--bikes", "300", "--hours", "9", "--size-m", "2000",
                "--coverage", "0.4", "--thefts", "3", *extra]  # fmt: skip
        res = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    a, b, c = (_files(tmp_path / name) for name in runs)
    assert a.keys() == b.keys() == c.keys()
    assert [k for k in a if a[k] != b[k] or a[k] != c[k]] == []
    trips = pd.read_parquet(tmp_path / "a" / "truth" / "trips.parquet")
    assert trips["bike_id"].nunique() > 200  # more than two chunks' worth of bikes rode
    assert (trips["trip_id"].to_numpy() == range(len(trips))).all()
