"""``tagtrail readers learn-miss-rates``: learn each reader's miss rate from the passages.

Registered on the ``readers`` sub-app of :mod:`tagtrail.commands.simulate` (beside
``readers import``). The job itself is :mod:`track_engine.db.reader_miss_rates`; the engine
also runs it every ``TAGTRAIL_MISS_RATE_INTERVAL_H`` hours.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from tagtrail.runtime import database_services, err
from tagtrail.settings import Settings

if TYPE_CHECKING:
    from track_engine.db.reader_miss_rates import LearnRun


def register_readers(readers_app: typer.Typer) -> None:
    """Add ``learn-miss-rates`` to the ``readers`` sub-app."""
    readers_app.command("learn-miss-rates")(learn_miss_rates)


def learn_miss_rates(
    days: Annotated[
        float, typer.Option(min=0.01, help="Learn from the passages of the last DAYS days.")
    ] = 7.0,
    max_passages: Annotated[
        int,
        typer.Option(
            min=1,
            help="Learn from about this many passages (whole tags, a fixed sample: reruns "
            "are comparable; ~0.5 ms per passage and round, four rounds).",
        ),
    ] = 200_000,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Learn every reader's miss rate from the stored passages and store it.

    Path choice then uses the learned rate instead of the registry's (at the API's next look,
    within a minute). A reader flagged deaf misses at least 80% of the tags that pass it:
    check it on site (docs/operations.md, "Reader miss rates").
    """
    from track_engine.db import reader_miss_rates
    from track_engine.db.migrate import migrate

    settings = Settings()
    with database_services(settings) as svc:
        migrate(svc.database_url)
        result = reader_miss_rates.run(svc.database_url, days=days, max_passages=max_passages)
    if result is None:
        err.print("nothing learned: no active road network, or another run is in progress")
        raise typer.Exit(1)
    if json:
        sys.stdout.write(orjson.dumps(run_document(result)).decode() + "\n")
        return
    _print_table(result)


def run_document(result: LearnRun) -> dict[str, Any]:
    """A run as one JSON-ready document."""
    return {
        "learned_at": result.learned_at.isoformat(),
        "since": result.since.isoformat(),
        "tags": result.tags,
        "passages": result.passages,
        "seconds": round(result.seconds, 2),
        "readers": [
            {
                "reader_id": r.reader_id,
                "registry_miss_rate": round(r.registry_miss_rate, 4),
                "learned_miss_rate": _round(r.miss_rate_learned, 4),
                "passes": _round(r.passes, 1),
                "heard": r.heard,
                "silent": round(r.silent, 1),
                "deaf": r.deaf,
            }
            for r in result.readers
        ],
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _print_table(result: LearnRun) -> None:
    from rich.table import Table

    table = Table(
        title=f"Reader miss rates from {result.passages} passages of {result.tags} tags "
        f"since {result.since:%Y-%m-%d %H:%M} UTC ({result.seconds:.1f} s)"
    )
    for head in ("reader", "registry", "learned", "passes", "deaf"):
        table.add_column(head, justify="left" if head == "reader" else "right")
    # The deaf first, then by learned rate, highest first; readers without evidence last.
    ordered = sorted(
        result.readers,
        key=lambda r: (not r.deaf, r.miss_rate_learned is None, -(r.miss_rate_learned or 0.0)),
    )
    for r in ordered:
        table.add_row(
            r.reader_id,
            f"{r.registry_miss_rate:.2f}",
            "–" if r.miss_rate_learned is None else f"{r.miss_rate_learned:.2f}",
            "0" if r.passes is None else f"{r.passes:.0f}",
            "[bold red]deaf[/]" if r.deaf else "",
        )
    err.print(table)
    deaf = result.deaf
    err.print(
        f"{len(deaf)} reader(s) look deaf: {', '.join(r.reader_id for r in deaf)}"
        if deaf
        else "no reader looks deaf"
    )
