"""``tagtrail bench ingest --engines 1,2``: ingest throughput by engine worker count.

Each engine count is one ``tagtrail bench ingest`` run (:func:`tagtrail.bench.ingest.run_ingest`,
its stored-rows phase too if asked for) with the same workload, gateways and feeding time:
a fresh database, the
engine workers as their own processes owning the four shard topics between them (worker
``i`` of ``n`` owns ``numpy.array_split(range(4), n)[i]``), the gateway(s) publishing each
tag's reads to the shard of its tag hash. The document lists each run's figures and its
speed-up over the first engine count.

What a speed-up can show depends on the machine: gateway, engines, PostgreSQL and Mosquitto
share its cores, so on a 2-core machine a second engine worker competes with PostgreSQL for
the same core instead of adding one. ``machine.cpus`` and the load averages are in the
document for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tagtrail.bench.ingest import IngestOptions, run_ingest
from tagtrail.bench.services import SHARDS

_RUN_FIGURES = (
    "reads_per_s",
    "copy_reads_per_s",
    "ratio",
    "reads_fed",
    "reads_stored",
    "reads_missing",
    "reads_unsent",
    "reads_lost_in_broker",
    "engine_rss_max_mib",
    "load_avg_before",
    "load_avg_after",
)


def engine_counts(text: str) -> tuple[int, ...]:
    """``"1,2"`` → ``(1, 2)``; each count must be 1 to the number of shard topics."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of counts") from None
    if any(not 1 <= n <= SHARDS for n in counts):
        raise ValueError(f"engine counts must be 1 to {SHARDS} (the shard topics): {text!r}")
    return counts


@dataclass(frozen=True)
class ShardsOptions:
    """Engine counts to compare, and the ingest run each of them gets."""

    engines: tuple[int, ...] = (1, 2)
    ingest: IngestOptions = field(default_factory=IngestOptions)

    def __post_init__(self) -> None:
        """Refuse engine counts the shard topics cannot be split into."""
        if not self.engines or any(not 1 <= n <= SHARDS for n in self.engines):
            raise ValueError(f"engine counts must be 1 to {SHARDS} (the shard topics)")


def run_shards(opts: ShardsOptions) -> dict[str, Any]:
    """One ingest run per engine count; their figures and speed-ups as one document."""
    runs: list[dict[str, Any]] = []
    machine: dict[str, Any] = {}
    for engines in opts.engines:
        doc = run_ingest(replace(opts.ingest, engines=engines))
        machine = machine or doc["machine"]
        run = {"engines": engines, **{k: doc["phases"][0][k] for k in _RUN_FIGURES}}
        if "reads_per_s_stored" in doc:
            run["reads_per_s_stored"] = doc["reads_per_s_stored"]
        runs.append(run)
    base = max(1, runs[0]["reads_per_s"])
    for run in runs:
        run["speedup"] = round(run["reads_per_s"] / base, 2)
    ingest = opts.ingest
    return {
        "benchmark": "ingest end to end, by engine workers",
        "options": {
            "engines": list(opts.engines),
            "shards": SHARDS,
            "minutes": ingest.minutes,
            "stored_rows": ingest.stored_rows,
            "gateways": ingest.gateways,
            "ptys_per_gateway": ingest.ptys_per_gateway,
            "max_reads_per_s": ingest.max_reads_per_s,
            "copy_rows": ingest.copy_rows,
            "tags": ingest.workload.tags,
            "readers": ingest.workload.readers,
        },
        "machine": machine,
        "runs": runs,
        "reads_per_s": {str(r["engines"]): r["reads_per_s"] for r in runs},
    }


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a shards document."""
    rows: list[tuple[str, str]] = [("cpus", str(doc["machine"].get("cpus")))]
    for r in doc["runs"]:
        tag = f"{r['engines']} engine{'s' if r['engines'] > 1 else ''}"
        rows += [
            (f"{tag}: pipeline reads/s", f"{r['reads_per_s']:,} (×{r['speedup']:.2f})"),
            (f"{tag}: raw COPY reads/s", f"{r['copy_reads_per_s']:,}"),
            (f"{tag}: engine RSS max", f"{r['engine_rss_max_mib']:,} MiB"),
            (
                f"{tag}: fed / stored / lost in broker",
                f"{r['reads_fed']:,} / {r['reads_stored']:,} / {r['reads_lost_in_broker']:,}",
            ),
            (f"{tag}: load before → after", f"{r['load_avg_before']} → {r['load_avg_after']}"),
        ]
    return rows
