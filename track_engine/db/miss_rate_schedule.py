"""The reader miss-rate job, run periodically by the engine: when a run is due, and where.

:func:`learn_periodically` is an engine thread. Whether a run is due is decided from the
database (the newest ``miss_rate_learned_at``), so a restarted engine does not rerun it early
and several engine workers run it once between them. Each run is the job of
:mod:`track_engine.db.reader_miss_rates` (learn, store, warn about deaf readers), then the
way-prior job (:mod:`track_engine.db.way_priors`) and the personal one
(:mod:`track_engine.db.personal_priors`) on the fresh rates, in a child
process (:func:`run_in_process`): learning is minutes of pure Python, which in a thread would
hold the engine's GIL.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from track_engine.db import personal_priors, way_priors
from track_engine.db.reader_miss_rates import (
    DEFAULT_DAYS,
    DEFAULT_MAX_PASSAGES,
    LearnRun,
    last_learned_at,
    run,
)

__all__ = ["JobOptions", "Runner", "learn_periodically", "run_in_process"]

log = logging.getLogger(__name__)


def learn_periodically(
    database_url: str,
    *,
    interval_s: float,
    stop: threading.Event,
    days: float = DEFAULT_DAYS,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    first_check_s: float = 60.0,
    check_s: float = 600.0,
    runner: Runner | None = None,
) -> None:
    """Run the job every ``interval_s`` until ``stop`` is set (an engine thread).

    Whether a run is due is decided from the database (the newest ``miss_rate_learned_at``),
    so a restarted engine does not rerun it early and several engine workers run it once
    between them (the job's lock and its own look at the time settle a tie). By default
    ``runner`` is :func:`run_in_process`: learning is minutes of pure Python, which in a
    thread would hold the engine's GIL.
    """
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    runner = runner or run_in_process
    options = JobOptions(database_url, days, max_passages, interval_s)
    last_here = -math.inf  # time.monotonic() of this process's last successful run
    wait_s = first_check_s
    while not stop.wait(wait_s):
        wait_s = min(check_s, interval_s)
        try:
            if time.monotonic() - last_here < interval_s or not _due(database_url, interval_s):
                continue
            if runner(options, stop):
                last_here = time.monotonic()  # a failed run is tried again at the next check
        except Exception:  # the engine goes on; the next check tries again
            log.exception("reader miss rates: the periodic run failed")


@dataclass(frozen=True)
class JobOptions:
    """What a periodic run needs (picklable, for the child process)."""

    database_url: str
    days: float
    max_passages: int
    interval_s: float
    log_level: int = logging.WARNING

    way_priors: bool = True  # after a run, learn the fleet's way prior from fresh rates
    personal_priors: bool = True  # then every tag's own (track_engine.db.personal_priors)

    def run(self) -> LearnRun | None:
        """The job, skipped when a run less than (nearly) ``interval_s`` ago stored rates;
        after a run, the way-prior jobs (:mod:`track_engine.db.way_priors`, then
        :mod:`track_engine.db.personal_priors`)."""
        result = run(
            self.database_url,
            days=self.days,
            max_passages=self.max_passages,
            # A little under the interval: a run due by the caller's clock is due here too.
            skip_if_newer_than=timedelta(seconds=self.interval_s * 0.9),
        )
        if result is not None and self.way_priors:
            way_priors.run(self.database_url, days=self.days, max_passages=self.max_passages)
        if result is not None and self.personal_priors:
            personal_priors.run(self.database_url, days=self.days)
        return result


Runner = Callable[[JobOptions, threading.Event], bool]


def _due(database_url: str, interval_s: float) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        last = last_learned_at(conn)
    return last is None or datetime.now(UTC) - last >= timedelta(seconds=interval_s)


def run_in_process(options: JobOptions, stop: threading.Event) -> bool:
    """Run the job in a child process and wait for it (ending it if ``stop`` is set);
    whether it ended well."""
    options = dataclasses.replace(options, log_level=logging.getLogger().getEffectiveLevel())
    process = multiprocessing.get_context("spawn").Process(
        target=_child, args=(options,), name="tagtrail-miss-rates", daemon=True
    )
    process.start()
    while process.is_alive():
        if stop.wait(1.0):
            process.terminate()
            process.join(5.0)
            return False
    process.join()
    if process.exitcode != 0:
        log.warning("reader miss rates: the run exited with %s", process.exitcode)
        return False
    return True


def _child(options: JobOptions) -> None:
    logging.basicConfig(
        level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options.run()
