"""``tagtrail bench accuracy`` scores the stated stretch probabilities (issue #18)."""

from __future__ import annotations

from tagtrail.bench.engine_accuracy import run_accuracy
from tagtrail.bench.engine_scenario import AccuracyOptions


def test_tagtrail_rows_carry_a_reliability_table_ece_and_alternatives_coverage() -> None:
    options = AccuracyOptions(
        seed=3, bikes=60, hours=1.0, size_m=3000.0, coverages=(0.5,), miss_rates=(0.3,),
        clones=0, thefts=1, hmm=False, route_oracle=False,
    )  # fmt: skip
    rows = {r["method"]: r for r in run_accuracy(options)}
    tagtrail, shortest = rows["tagtrail"], rows["shortest_path"]
    bins = tagtrail["reliability"]
    assert len(bins) == 10
    assert sum(b["stretches"] for b in bins) == tagtrail["calibrated_stretches"] > 0
    for b in bins:
        if b["stretches"]:
            assert b["lo"] <= b["stated"] <= b["hi"]
            assert 0.0 <= b["right"] <= 1.0
    assert 0.0 <= tagtrail["calibration_ece"] <= 1.0
    # What the officer is shown (the drawn way and its alternatives) holds at least what is
    # drawn.
    assert tagtrail["recall"] <= tagtrail["alternatives_coverage"] <= 1.0
    # A method that states no probability is not scored on one.
    assert shortest["calibration_ece"] is None
    assert shortest["reliability"] is None
