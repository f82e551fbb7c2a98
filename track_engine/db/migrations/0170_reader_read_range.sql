-- Each reader's surveyed read range round its pole, meters (issue #17): where it reaches a road
-- that does not cross the reader's node (a street beyond a hedge, a ramp), a read from that
-- road says the bike was in the zone, not at the node (track_engine/route_zones.py). NULL: not
-- surveyed, the read favours the node as before. Deployment files give it (range_m, default
-- by protocol); readers is a reference table on Citus, so the column reaches every worker.
ALTER TABLE readers ADD COLUMN range_m real CHECK (range_m IS NULL OR (range_m > 0 AND range_m <= 500));
