-- The fleet's way prior (track_engine.way_prior, learned by track_engine.db.way_priors): for
-- each ordered reader pair, the estimated rides of each way between them, a way known by the
-- readers it passes in order (`via`, a JSON array of reader ids; [] for none). Path choice adds
-- log(share of the pair's rides) to each candidate way's score. Each run upserts the ways it
-- learned and sets `rides` to 0 on the others (no role may DELETE: tests/security); only rows
-- with rides > 0 are the prior.
CREATE TABLE IF NOT EXISTS way_priors (
    from_reader text NOT NULL,
    to_reader text NOT NULL,
    via jsonb NOT NULL,
    rides real NOT NULL CHECK (rides >= 0),
    learned_at timestamptz NOT NULL,
    PRIMARY KEY (from_reader, to_reader, via)
);

-- The engine's learning job writes it; the API loads it with the network (read only).
GRANT SELECT, INSERT, UPDATE ON way_priors TO tagtrail_engine;
REVOKE INSERT, UPDATE ON way_priors FROM tagtrail_api;
