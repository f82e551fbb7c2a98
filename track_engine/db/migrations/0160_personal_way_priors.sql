-- Each tag's own way prior (track_engine.way_prior.learn_personal_prior, learned by
-- track_engine.db.personal_priors): how this tag rode the ways between reader pairs, from its
-- own stored passages. One row per tag, so a route lookup reads one row by key and a run
-- replaces a tag's prior in one upsert. `ways` is a JSON array of
-- [from_reader, to_reader, [via readers…], rides]; `rides` the rides it was learned from.
-- Bounded: only tags with enough rides in the window get ways (MIN_PERSONAL_RIDES); a
-- tag no longer qualifying keeps its row with ways [] and rides 0 (no role may DELETE:
-- tests/security). Path choice adds it to the fleet's prior (way_priors, migration 0150) for
-- the stretches before an open theft's stolen_at only.
CREATE TABLE IF NOT EXISTS personal_way_priors (
    tag_id text PRIMARY KEY,
    ways jsonb NOT NULL,
    rides integer NOT NULL CHECK (rides >= 0),
    learned_at timestamptz NOT NULL
);

-- The engine's learning job writes it; the API reads a tag's row for its routes.
GRANT SELECT, INSERT, UPDATE ON personal_way_priors TO tagtrail_engine;
REVOKE INSERT, UPDATE ON personal_way_priors FROM tagtrail_api;
-- Which passages may feed a tag's prior: none of a bike while it is stolen (only the theft's
-- times, nothing of the report itself).
GRANT SELECT (bike_id, stolen_at, recovered_at) ON thefts TO tagtrail_engine;
