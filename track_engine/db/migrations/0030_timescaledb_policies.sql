-- TimescaleDB policies (issue #10, docs/deploy.md): compression of reads older than a day and a
-- continuous aggregate of per-reader traffic. Only when migration 0003 made `reads` and
-- `passages` hypertables (partition_policy says 'timescaledb' and the extension is installed);
-- on plain PostgreSQL the same per-reader statistics are ordinary views computed at query time,
-- so that a query over them runs unchanged on either.
--
-- Retention is NOT a TimescaleDB policy. add_retention_policy() drops whole chunks of `reads`
-- on TimescaleDB's own schedule, without first copying the reads of tags under a case hold
-- into `held_reads`: evidence for open cases would be lost. Retention stays with the engine's
-- housekeeping (track_engine/retention.py), which on TimescaleDB copies the held reads and
-- calls drop_chunks() in one transaction. Do not add a retention policy to `reads`.
--
-- Needs TimescaleDB 2.11 or later (inserts that meet compressed chunks are checked against the
-- primary key, and ON CONFLICT DO NOTHING works on them, so a late or redelivered batch older
-- than a day is still stored once). Statements are written out (not EXECUTEd strings) so that
-- PL/pgSQL checks their syntax on plain PostgreSQL too; a re-run changes nothing.
DO $$
BEGIN
    IF (SELECT mode FROM partition_policy WHERE table_name = 'reads') = 'timescaledb'
       AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- One segment per tag: a route or case query reads one tag's reads, and a day of one
        -- tag's reads compresses well ordered by time.
        ALTER TABLE reads SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'tag_id',
            timescaledb.compress_orderby = 'read_at, reader_id, antenna');
        PERFORM add_compression_policy('reads', INTERVAL '1 day', if_not_exists => true);

        -- Per reader per hour. Refreshed every 30 min over the last three days; older buckets
        -- stay as they are, so the statistics outlive the raw reads' retention (counts per
        -- reader identify nobody). Real time: the newest hour is computed from the raw rows.
        CREATE MATERIALIZED VIEW IF NOT EXISTS reader_hourly_reads
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT reader_id, time_bucket(INTERVAL '1 hour', read_at) AS hour,
                   count(*) AS reads
            FROM reads GROUP BY 1, 2
            WITH NO DATA;
        PERFORM add_continuous_aggregate_policy('reader_hourly_reads',
            start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
            schedule_interval => INTERVAL '30 minutes', if_not_exists => true);

        CREATE MATERIALIZED VIEW IF NOT EXISTS reader_hourly_passages
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT reader_id, time_bucket(INTERVAL '1 hour', first_at) AS hour,
                   count(*) AS passages, sum(read_count)::bigint AS passage_reads
            FROM passages GROUP BY 1, 2
            WITH NO DATA;
        PERFORM add_continuous_aggregate_policy('reader_hourly_passages',
            start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
            schedule_interval => INTERVAL '30 minutes', if_not_exists => true);
    ELSE
        -- Plain PostgreSQL: the same columns, computed when asked (no partition pruning on
        -- `hour`: fine for a site's dashboards, too slow for a province's; see docs/deploy.md).
        CREATE OR REPLACE VIEW reader_hourly_reads AS
            SELECT reader_id, date_trunc('hour', read_at, 'UTC') AS hour, count(*) AS reads
            FROM reads GROUP BY 1, 2;
        CREATE OR REPLACE VIEW reader_hourly_passages AS
            SELECT reader_id, date_trunc('hour', first_at, 'UTC') AS hour,
                   count(*) AS passages, sum(read_count)::bigint AS passage_reads
            FROM passages GROUP BY 1, 2;
    END IF;
END $$;

-- Both together, whichever kind the two above are.
CREATE OR REPLACE VIEW reader_hourly_stats AS
    SELECT reader_id, hour,
           coalesce(r.reads, 0) AS reads,
           coalesce(p.passages, 0) AS passages,
           coalesce(p.passage_reads, 0) AS passage_reads
    FROM reader_hourly_reads r FULL JOIN reader_hourly_passages p USING (reader_id, hour);
