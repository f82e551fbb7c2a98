"""The accuracy benchmark's figures on two commits, field by field, on the same reads.

    .venv/bin/python tools/accuracy_before_after.py BEFORE [--after REF] [--seed 7] [--json]

Issue #20 asks that ``tagtrail bench accuracy`` give "the same figures to 3 digits through the
real engine" as the old benchmark, which folded passages with its own copy of the engine's
code (BEFORE: ``78e2056^``, the last commit with that copy). Each side runs its own
``run_accuracy`` (seed, default scenarios) in a subprocess with ``PYTHONHASHSEED=0`` (the HMM
baseline's library iterates sets, so its row otherwise moves in the 4th digit from run to
run), twice: with the simulator's 2% repeated reads (as ``tagtrail bench accuracy`` runs) and
with none (``RfParams(duplicate_prob=0)``). The table counts the numeric fields that differ
once rounded to 3 digits, per pairing:

- ``before vs after, as run``: the figures as each benchmark prints them;
- ``before vs after, no repeated reads``: the same reads into both folds;
- ``after: repeats vs none``: whether the engine cares about repeats (it drops them, as the
  reads table's key does; the old copy counted them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from worktrees import checkouts

# Run inside the side's code: patch the simulator's repeats (before the bench imports it),
# then print the benchmark's records as JSON. The module moved in the redesign.
_RUN = """
import dataclasses, json, sys
import simulators.rf as rf
dup = float(sys.argv[2])
if dup != rf.RfParams().duplicate_prob:
    plain = rf.simulate_reads
    def simulate_reads(*args, **kwargs):
        given = kwargs.get("params", rf.RfParams())
        kwargs["params"] = dataclasses.replace(given, duplicate_prob=dup)
        return plain(*args, **kwargs)
    rf.simulate_reads = simulate_reads
try:
    from tagtrail.bench.engine_accuracy import AccuracyOptions, run_accuracy
except ImportError:
    from tagtrail.commands.engine_accuracy import AccuracyOptions, run_accuracy
print(json.dumps(run_accuracy(AccuracyOptions(seed=int(sys.argv[1])))))
"""


def _run(code: Path, seed: int, duplicate_prob: float) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(seed), str(duplicate_prob)],
        cwd=code, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"accuracy run failed in {code}:\n{done.stderr[-3000:]}")
    records: list[dict[str, Any]] = json.loads(done.stdout)
    return records


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["method"], record["coverage"], record["miss_rate"])


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]], digits: int = 3) -> dict[str, Any]:
    """Numeric fields present on both sides whose values differ once rounded to ``digits``."""
    left = {_key(r): r for r in a}
    right = {_key(r): r for r in b}
    fields = 0
    differ: list[dict[str, Any]] = []
    for key in sorted(set(left) & set(right), key=str):
        for name, x in left[key].items():
            y = right[key].get(name)
            numbers = (int, float)
            if isinstance(x, bool) or not isinstance(x, numbers) or not isinstance(y, numbers):
                continue
            fields += 1
            if round(float(x), digits) != round(float(y), digits):
                differ.append({"row": list(key), "field": name, "a": x, "b": y})
    return {
        "rows_compared": len(set(left) & set(right)),
        "rows_only_one_side": len(set(left) ^ set(right)),
        "fields": fields,
        "differ": len(differ),
        "differ_by_field": dict(Counter(d["field"] for d in differ).most_common()),
        "examples": differ[:8],
    }


def main() -> None:
    """Run both sides with and without repeated reads and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the commit with the old benchmark, e.g. 78e2056^")
    parser.add_argument("--after", help="a commit (default: this checkout as it is)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    refs = {"before": options.before, "after": options.after}
    with checkouts(refs) as trees:
        runs = {
            (side, dup): _run(trees[side], options.seed, dup)
            for side in ("before", "after")
            for dup in (0.02, 0.0)
        }
    doc = {
        "before": options.before,
        "after": options.after or "checkout",
        "seed": options.seed,
        "before vs after, as run": compare(runs["before", 0.02], runs["after", 0.02]),
        "before vs after, no repeated reads": compare(runs["before", 0.0], runs["after", 0.0]),
        "after: repeats vs none": compare(runs["after", 0.02], runs["after", 0.0]),
    }
    if options.json:
        print(json.dumps(doc))
        return
    for name, result in doc.items():
        if isinstance(result, dict):
            print(
                f"{name:<38} {result['differ']:>4} of {result['fields']:>4} fields differ "
                f"({result['rows_compared']} rows)"
            )
            for example in result["examples"][:3]:
                print(f"    {example}")


if __name__ == "__main__":
    main()
