-- Raw reads and passages, partitioned by time so that the live index stays small and retention
-- is dropping a partition: TimescaleDB hypertables when the extension is preloaded, native
-- range partitions otherwise (daily, created ahead of time by tagtrail_ensure_partitions).
CREATE TABLE reads (
    tag_id       text NOT NULL,
    read_at      timestamptz NOT NULL,     -- corrected for the reader's clock offset
    reader_id    text NOT NULL,
    antenna      smallint NOT NULL,
    rssi_dbm     real NOT NULL,
    reader_seq   bigint NOT NULL,
    gateway_id   text NOT NULL,
    -- The natural key of a read: the same read delivered twice is stored once.
    PRIMARY KEY (tag_id, read_at, reader_id, antenna)
) PARTITION BY RANGE (read_at);

CREATE TABLE passages (
    tag_id         text NOT NULL,
    reader_id      text NOT NULL,
    first_at       timestamptz NOT NULL,
    last_at        timestamptz NOT NULL,
    closest_at     timestamptz NOT NULL,     -- fitted closest approach, clock-corrected
    peak_rssi_dbm  real NOT NULL,
    read_count     integer NOT NULL,
    direction      text NOT NULL DEFAULT '',
    PRIMARY KEY (tag_id, first_at, reader_id)
) PARTITION BY RANGE (first_at);
CREATE INDEX passages_reader_time ON passages (reader_id, first_at);

CREATE TABLE partition_policy (
    table_name  text PRIMARY KEY,
    mode        text NOT NULL CHECK (mode IN ('native', 'timescaledb'))
);

-- Create the daily partitions of `tbl` covering [from_ts, to_ts]; a no-op under TimescaleDB.
-- Safe to call concurrently: an advisory lock serialises creators and IF NOT EXISTS skips done days.
CREATE FUNCTION tagtrail_ensure_partitions(tbl text, from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date := (from_ts AT TIME ZONE 'UTC')::date;
    last_day date := (to_ts AT TIME ZONE 'UTC')::date;
    part text;
    created integer := 0;
BEGIN
    IF (SELECT mode FROM partition_policy WHERE table_name = tbl) IS DISTINCT FROM 'native' THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tagtrail_partitions:' || tbl));
    WHILE day <= last_day LOOP
        part := format('%s_p%s', tbl, to_char(day, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                part, tbl,
                (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END $$;

-- Under TimescaleDB, turn the partitioned tables into hypertables instead: a hypertable cannot
-- be a declaratively partitioned table, so they are re-created unpartitioned first (both are
-- still empty here).
DO $$
BEGIN
    IF current_setting('shared_preload_libraries', true) LIKE '%timescaledb%'
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        CREATE TABLE reads_ht (LIKE reads INCLUDING ALL);
        DROP TABLE reads;
        ALTER TABLE reads_ht RENAME TO reads;
        PERFORM create_hypertable('reads', 'read_at', chunk_time_interval => INTERVAL '1 day');
        CREATE TABLE passages_ht (LIKE passages INCLUDING ALL);
        DROP TABLE passages;
        ALTER TABLE passages_ht RENAME TO passages;
        PERFORM create_hypertable('passages', 'first_at', chunk_time_interval => INTERVAL '7 days');
        INSERT INTO partition_policy VALUES ('reads', 'timescaledb'), ('passages', 'timescaledb');
    ELSE
        INSERT INTO partition_policy VALUES ('reads', 'native'), ('passages', 'native');
    END IF;
END $$;
