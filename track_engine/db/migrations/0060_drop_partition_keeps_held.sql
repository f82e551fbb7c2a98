-- The engine's login may drop past day partitions of reads and passages (retention) through
-- tagtrail_drop_partition (migration 0040), but until now nothing stopped that login from
-- dropping a partition holding evidence under a case hold: retention copies held reads to
-- held_reads first, yet a direct call (a bug, or whoever holds the engine's password) could
-- skip the copy. The function now checks the evidence itself and refuses the drop:
--
--   reads     while any read in the partition of a tag under a case hold (inside the hold's
--             time range, the rule retention copies by) has no identical row in held_reads;
--             retention copies them in the same transaction just before, so it still drops;
--   passages  while any passage in the partition of a held tag overlaps the hold's time range
--             (there is no held copy of passages: such a partition is kept).
--
-- Refused with restrict_violation, the partition and its rows untouched. Tested as the
-- engine's login in tests/security/test_case_hold_partitions.py.
CREATE OR REPLACE FUNCTION tagtrail_drop_partition(tbl text, part text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    day date;
    unkept bigint;
BEGIN
    IF (SELECT mode FROM partition_policy WHERE table_name = tbl) IS DISTINCT FROM 'native' THEN
        RAISE EXCEPTION '% is not a natively partitioned table', tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF part !~ ('^' || tbl || '_p[0-9]{8}$') THEN
        RAISE EXCEPTION '% is not a day partition of %', part, tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tagtrail_partitions:' || tbl));
    IF to_regclass(part) IS NULL THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_inherits
                   WHERE inhrelid = to_regclass(part) AND inhparent = to_regclass(tbl)) THEN
        RAISE EXCEPTION '% is not a partition of %', part, tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    day := to_date(right(part, 8), 'YYYYMMDD');
    IF (day + 1)::timestamp AT TIME ZONE 'UTC' > now() THEN
        RAISE EXCEPTION 'partition % is not in the past', part
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Held rows are found through case_holds (a few rows per open case, indexed by tag), so
    -- the check reads only the held tags' rows of the partition, not the whole day.
    IF tbl = 'reads' THEN
        EXECUTE format(
            'SELECT count(*) FROM %I r JOIN case_holds h ON h.tag_id = r.tag_id
             WHERE r.read_at >= h.held_from AND (h.held_to IS NULL OR r.read_at <= h.held_to)
               AND NOT EXISTS (
                 SELECT 1 FROM held_reads k
                 WHERE (k.tag_id, k.read_at, k.reader_id, k.antenna, k.rssi_dbm, k.reader_seq,
                        k.gateway_id)
                     = (r.tag_id, r.read_at, r.reader_id, r.antenna, r.rssi_dbm, r.reader_seq,
                        r.gateway_id))', part) INTO unkept;
        IF unkept > 0 THEN
            RAISE EXCEPTION 'partition % holds % reads under a case hold that are not in held_reads',
                part, unkept USING ERRCODE = 'restrict_violation';
        END IF;
    ELSIF tbl = 'passages' THEN
        EXECUTE format(
            'SELECT count(*) FROM %I p JOIN case_holds h ON h.tag_id = p.tag_id
             WHERE p.last_at >= h.held_from AND (h.held_to IS NULL OR p.first_at <= h.held_to)',
            part) INTO unkept;
        IF unkept > 0 THEN
            RAISE EXCEPTION 'partition % holds % passages under a case hold', part, unkept
                USING ERRCODE = 'restrict_violation';
        END IF;
    ELSE
        -- A table partitioned later gets a check of its own here before it can be dropped.
        RAISE EXCEPTION 'no case-hold check for %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END $$;

-- CREATE OR REPLACE keeps the function's owner and grants (EXECUTE: tagtrail_engine only).
