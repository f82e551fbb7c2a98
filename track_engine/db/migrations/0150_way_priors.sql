-- The fleet's way prior (track_engine.way_prior, learned by track_engine.db.way_priors): for
-- each ordered reader pair, the estimated rides of each way between them, a way known by the
-- readers it passes in order (`via`, a JSON array of reader ids; [] for none). Path choice adds
-- log(share of the pair's rides) to each candidate way's score. Replaced whole by each run.
CREATE TABLE IF NOT EXISTS way_priors (
    from_reader text NOT NULL,
    to_reader text NOT NULL,
    via jsonb NOT NULL,
    rides real NOT NULL CHECK (rides >= 0),
    learned_at timestamptz NOT NULL,
    PRIMARY KEY (from_reader, to_reader, via)
);

-- The engine's learning job replaces it; the API loads it with the network (read only).
GRANT SELECT, INSERT, DELETE ON way_priors TO tagtrail_engine;
REVOKE INSERT, UPDATE ON way_priors FROM tagtrail_api;
