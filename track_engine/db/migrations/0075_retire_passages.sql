-- Late reads merge into the passage they belong to (track_engine/late_reads.py). A merge can
-- move a passage's key (a late read before its first read) or join two stored passages into
-- one (a late batch from the middle of a visit), so the passages it replaces must go. The
-- engine may not DELETE anything (migration 0040): this function removes a stored passage only
-- while another stored passage of the same tag and reader, with more reads, covers its whole
-- span: the one the engine wrote just before calling it. Anything else is left as it is.
CREATE OR REPLACE FUNCTION tagtrail_retire_passages(
    tag_ids text[], reader_ids text[], first_ats timestamptz[]
) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    retired integer;
BEGIN
    WITH gone AS (
        DELETE FROM passages p
        USING unnest(tag_ids, reader_ids, first_ats) AS k (tag_id, reader_id, first_at)
        WHERE p.tag_id = k.tag_id AND p.reader_id = k.reader_id AND p.first_at = k.first_at
          AND EXISTS (
              SELECT 1 FROM passages c
              WHERE c.tag_id = p.tag_id AND c.reader_id = p.reader_id
                AND c.first_at <= p.first_at AND c.last_at >= p.last_at
                AND c.first_at >= p.first_at - interval '1 day'
                AND c.read_count > p.read_count)
        RETURNING 1)
    SELECT count(*) INTO retired FROM gone;
    RETURN retired;
END $$;

REVOKE ALL ON FUNCTION tagtrail_retire_passages(text[], text[], timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tagtrail_retire_passages(text[], text[], timestamptz[])
    TO tagtrail_engine;
