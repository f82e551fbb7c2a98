"""``tagtrail bench gateway --format llrp``: a tiny run, checked for its rows and counts only
(no timing is asserted: the machine is shared)."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from tagtrail.cli import app


def test_llrp_bench_decodes_spools_and_runs_a_session_with_every_read() -> None:
    result = CliRunner().invoke(
        app, ["bench", "gateway", "--format", "llrp", "--reads", "2000", "--repeat", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["formats"] == ["llrp"]
    assert len(doc["load_average"]) == 3
    shapes = [(r["protocol"], r["shape"]) for r in doc["results"]]
    assert shapes == [
        ("llrp", "TCP stream, report per read"),
        ("llrp", "TCP stream, 50 tags per report"),
        ("llrp", "decode+normalize+spool"),
        ("llrp", "loopback session (transport)"),
    ]
    for row in doc["results"]:
        assert row["reads"] == 2000  # the bench itself refuses a run that lost reads
        assert row["reads_per_s"] > 0


def test_unknown_format_is_refused() -> None:
    result = CliRunner().invoke(app, ["bench", "gateway", "--format", "nope", "--json"])
    assert result.exit_code == 2
    assert "no benchmark for formats" in result.output
