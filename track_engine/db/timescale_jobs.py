"""TimescaleDB's compression and continuous-aggregate policies, run by the engine when the
extension's own scheduler does not (issue #19).

On PostgreSQL 15.20 TimescaleDB 2.28.3's background scheduler fails every job (``cannot drop
portal "" while it is being set up``, ../shared/pg15-ext/README.md), so the policies of
migration 0030 would never run: reads stay uncompressed, the hourly aggregates stay empty.
A job run from a client session works. So the engine's housekeeping looks at each policy job
and runs it with ``CALL run_job(id)`` when it is due and the scheduler has not run it
successfully within its schedule (failed, never ran, or no background workers at all):

    due  =  our own last run of it is a schedule_interval ago (or never), and
            the scheduler's last success is older than schedule_interval + grace (or none).

So where the scheduler works, nothing runs twice; where it fails, TagTrail keeps the schedule.
``run_job`` cannot run inside a transaction block (a compression policy commits per chunk),
so it runs on a connection of its own in autocommit. It needs the job's owner (the migration's
role): an engine login without it gets ``insufficient_privilege``, which is counted and logged
(docs/deployment.md, "TimescaleDB").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import psycopg

log = logging.getLogger(__name__)

# The policies migration 0030 adds; retention is TagTrail's own (track_engine/retention.py).
POLICY_PROCS = ("policy_compression", "policy_refresh_continuous_aggregate")
# How late the scheduler may be before we take a job over.
GRACE_S = 300.0

_JOBS = """
    SELECT j.job_id, j.proc_name, extract(epoch FROM j.schedule_interval)::float8,
           -- -infinity when it never succeeded under a running scheduler (NULL: never ran)
           CASE WHEN isfinite(s.last_successful_finish)
                THEN extract(epoch FROM now() - s.last_successful_finish)::float8 END,
           s.last_run_status, coalesce(s.total_failures, 0)
    FROM timescaledb_information.jobs j
    LEFT JOIN timescaledb_information.job_stats s USING (job_id)
    WHERE j.proc_name = ANY(%s) AND j.scheduled
    ORDER BY j.job_id"""


@dataclass(slots=True)
class JobsRun:
    """What one :meth:`PolicyRunner.run_due` did."""

    ran: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    scheduler_failing: int = 0  # jobs whose background runs failed or never succeeded


@dataclass(slots=True)
class PolicyRunner:
    """Runs overdue TimescaleDB policy jobs of one database (kept by the engine service)."""

    database_url: str
    grace_s: float = GRACE_S
    _last_run: dict[int, float] = field(default_factory=dict)

    def run_due(self, now: float | None = None) -> JobsRun:
        """Run every policy job that is due and that the scheduler has not run (see module)."""
        now = time.monotonic() if now is None else now
        result = JobsRun()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            if not _has_timescaledb(conn):
                return result
            for job_id, proc, every_s, since_ok_s, status, failures in conn.execute(
                _JOBS, (list(POLICY_PROCS),)
            ).fetchall():
                scheduler_ok = since_ok_s is not None and since_ok_s <= every_s + self.grace_s
                if not scheduler_ok and (status == "Failed" or failures or since_ok_s is None):
                    result.scheduler_failing += 1
                last = self._last_run.get(job_id)
                if scheduler_ok or (last is not None and now - last < every_s):
                    continue
                self._last_run[job_id] = now
                try:
                    conn.execute("CALL run_job(%s)", (job_id,))
                except psycopg.Error as exc:
                    log.error("timescaledb: job %d (%s) failed: %s", job_id, proc, exc)
                    result.failed.append(job_id)
                    continue
                result.ran.append(job_id)
        return result


def _has_timescaledb(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
    ).fetchone()
    return bool(row and row[0])
