-- TimescaleDB for real (issue #19), only where migration 0003 made hypertables.
--
-- 1. create_hypertable('reads', ...) added its default index on (read_at DESC). The primary
--    key starts with read_at already (migration 0025), so that index only cost every COPY an
--    index insert and every chunk its pages: dropped.
-- 2. Retention through a SECURITY DEFINER function, like tagtrail_drop_partition for native
--    partitions: drop_chunks needs the hypertable's owner, and the engine's login is not. The
--    function keeps migration 0060's rule: it refuses while a read under a case hold older
--    than the cutoff has no identical row in held_reads (retention copies them in the same
--    transaction just before), and it drops only chunks wholly in the past. Returns the
--    names of the chunks it dropped.
DO $$
BEGIN
    IF (SELECT mode FROM partition_policy WHERE table_name = 'reads') = 'timescaledb' THEN
        DROP INDEX IF EXISTS reads_read_at_idx;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION tagtrail_drop_chunks(tbl text, older_than timestamptz) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    unkept bigint;
    dropped text[];
BEGIN
    IF (SELECT mode FROM partition_policy WHERE table_name = tbl) IS DISTINCT FROM 'timescaledb'
    THEN
        RAISE EXCEPTION '% is not a TimescaleDB hypertable of TagTrail', tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF tbl <> 'reads' THEN
        -- Passages are kept (routes are drawn from them); another table gets a check first.
        RAISE EXCEPTION 'no case-hold check for %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF older_than > now() - INTERVAL '1 day' THEN
        RAISE EXCEPTION 'chunks newer than a day ago (%) are not expired', older_than
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT count(*) INTO unkept
    FROM reads r JOIN case_holds h ON h.tag_id = r.tag_id
    WHERE r.read_at < older_than
      AND r.read_at >= h.held_from AND (h.held_to IS NULL OR r.read_at <= h.held_to)
      AND NOT EXISTS (
        SELECT 1 FROM held_reads k
        WHERE (k.tag_id, k.read_at, k.reader_id, k.antenna, k.rssi_dbm, k.reader_seq,
               k.gateway_id)
            = (r.tag_id, r.read_at, r.reader_id, r.antenna, r.rssi_dbm, r.reader_seq,
               r.gateway_id));
    IF unkept > 0 THEN
        RAISE EXCEPTION 'reads before % hold % reads under a case hold that are not in held_reads',
            older_than, unkept USING ERRCODE = 'restrict_violation';
    END IF;
    -- drop_chunks exists only with the extension: called by name at run time, so that this
    -- function is created (and unusable) on plain PostgreSQL too.
    EXECUTE 'SELECT coalesce(array_agg(c::text), ''{}'') FROM drop_chunks($1::regclass, older_than => $2) c'
        INTO dropped USING tbl, older_than;
    RETURN dropped;
END $$;

REVOKE ALL ON FUNCTION tagtrail_drop_chunks(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tagtrail_drop_chunks(text, timestamptz) TO tagtrail_engine;
