-- The natural key of a read stays (tag_id, read_at, reader_id, antenna), but its index now
-- starts with the time. Reads arrive in time order and in random tag order: with the tag
-- first, every insert landed on a random leaf of an index that grows all day, so ingest slowed
-- as the day's partition filled (and the index stopped fitting in memory). Time first, inserts
-- append at the right edge. Measured on this machine: COPY of 600k reads into an empty table,
-- 80k-100k rows/s tag-first, 170k-220k time-first (docs/performance.md).
--
-- Reads are looked up by time (recovery after a restart, retention, statistics) and by tag
-- only for one tag's evidence over a known time range; "last seen" comes from passages and
-- alerts (track_engine/db/tracking.py), which are indexed by tag.
DO $$
DECLARE
    pk text;
BEGIN
    SELECT conname INTO pk FROM pg_constraint
    WHERE conrelid = 'reads'::regclass AND contype = 'p';
    EXECUTE format('ALTER TABLE reads DROP CONSTRAINT %I', pk);
END $$;
ALTER TABLE reads ADD PRIMARY KEY (read_at, tag_id, reader_id, antenna);
