"""Ingest, alert latency and route query benchmarks of two commits, in one run on one machine.

    .venv/bin/python tools/bench_before_after.py BEFORE [--after HEAD] [--rounds 2] [--json]

BEFORE is checked out into a temporary git worktree; each round runs every benchmark on
BEFORE, then on AFTER (this checkout when --after is not given), so that both meet the same
machine state, and the table gives each figure's median over the rounds and AFTER/BEFORE.
Both run on this checkout's virtual environment (PYTHONPATH selects the code). A refactoring
that must keep "ingest, alert latency and route query within 5% of before" (docs/performance.md,
"Before and after a redesign") is checked this way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from worktrees import checkouts

# name -> (tagtrail bench arguments, {figure: path into its JSON document}, higher is better)
BENCHES: dict[str, tuple[list[str], dict[str, tuple[str, ...]], bool]] = {
    "ingest": (["ingest", "--minutes", "1"], {"reads/s": ("reads_per_s",)}, True),
    "latency": (
        ["latency"],
        {"alert p50 ms": ("p50_ms",), "alert p99 ms": ("p99_ms",)},
        False,
    ),
    "query": (
        ["query", "--stored-rows", "2000000", "--seconds", "30"],
        {
            "route p50 ms": ("route", "after_warmup", "p50_ms"),
            "route p99 ms": ("route", "after_warmup", "p99_ms"),
            "last seen p99 ms": ("last_seen", "after_warmup", "p99_ms"),
        },
        False,
    ),
}


def _bench(code: Path, args: list[str]) -> dict[str, Any]:
    """One ``tagtrail bench`` run of the code at ``code``; its JSON document."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, "-m", "tagtrail", "bench", *args, "--json"],
        cwd=code, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"bench {' '.join(args)} failed in {code}:\n{done.stderr[-3000:]}")
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _dig(doc: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = doc
    for key in path:
        value = value[key]
    return float(value)


def _measure(
    trees: dict[str, Path], rounds: int, names: list[str]
) -> dict[str, dict[str, list[float]]]:
    """Each figure of each side, one value per round; BEFORE then AFTER within a round."""
    figures: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for round_no in range(rounds):
        for name in names:
            args, paths, _ = BENCHES[name]
            for side in ("before", "after"):
                print(f"round {round_no + 1}: {name} on {side}", file=sys.stderr)
                doc = _bench(trees[side], args)
                for figure, path in paths.items():
                    figures[side].setdefault(figure, []).append(_dig(doc, path))
    return figures


def _rows(figures: dict[str, dict[str, list[float]]], names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        _, paths, higher_better = BENCHES[name]
        for figure in paths:
            before = statistics.median(figures["before"][figure])
            after = statistics.median(figures["after"][figure])
            rows.append(
                {
                    "figure": figure,
                    "before": before,
                    "after": after,
                    "after_over_before": round(after / before, 3) if before else None,
                    "higher_is_better": higher_better,
                    "runs_before": figures["before"][figure],
                    "runs_after": figures["after"][figure],
                }
            )
    return rows


def main() -> None:
    """Run the rounds and print the table (or one JSON document)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the commit to compare against")
    parser.add_argument("--after", help="a commit (default: this checkout as it is)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=sorted(BENCHES))
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    refs = {"before": options.before, "after": options.after}
    with checkouts(refs) as trees:
        rows = _rows(_measure(trees, options.rounds, options.only), options.only)
    if options.json:
        print(json.dumps({"before": options.before, "after": options.after, "rows": rows}))
        return
    print(f"{'figure':<18} {'before':>10} {'after':>10} {'after/before':>13}")
    for row in rows:
        print(
            f"{row['figure']:<18} {row['before']:>10,.1f} {row['after']:>10,.1f} "
            f"{row['after_over_before']:>13.3f}"
        )


if __name__ == "__main__":
    main()
