-- Reader miss rates learned from the passages themselves (track_engine/miss_rates.py; the job
-- is track_engine/db/reader_miss_rates.py, run by `tagtrail readers learn-miss-rates` and
-- periodically by the engine). readers.miss_rate stays the operator's or survey figure: it is
-- the prior of the learning, and what path choice uses wherever nothing has been learned
-- (coalesce(miss_rate_learned, miss_rate)). An import of readers writes miss_rate only, so it
-- never wipes what was learned.
--
--   miss_rate_learned     posterior mean of the reader's miss rate; NULL: no evidence yet
--   miss_rate_passes      evidence behind it: expected passes of a tag (heard or not) during
--                         continuous rides in the job's window
--   miss_rate_learned_at  when the job wrote them
ALTER TABLE readers
    ADD COLUMN IF NOT EXISTS miss_rate_learned real
        CONSTRAINT readers_miss_rate_learned_range
        CHECK (miss_rate_learned >= 0 AND miss_rate_learned <= 1),
    ADD COLUMN IF NOT EXISTS miss_rate_passes real
        CONSTRAINT readers_miss_rate_passes_positive CHECK (miss_rate_passes >= 0),
    ADD COLUMN IF NOT EXISTS miss_rate_learned_at timestamptz;

-- The engine runs the job: it reads the road network (the graph the candidate paths are drawn
-- on) and writes these three columns, nothing else of readers (migration 0040's grants).
GRANT SELECT ON road_networks, road_nodes, road_edges TO tagtrail_engine;
GRANT UPDATE (miss_rate_learned, miss_rate_passes, miss_rate_learned_at) ON readers
    TO tagtrail_engine;
