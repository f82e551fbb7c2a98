-- Acknowledgements pushed live to every open duty desk: each desk's stream asks for what was
-- acknowledged in the last moments, by time. Written to run twice without harm.
CREATE INDEX IF NOT EXISTS alerts_acknowledged ON alerts (acknowledged_at)
    WHERE acknowledged_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS registration_flags_acknowledged ON registration_flags (acknowledged_at)
    WHERE acknowledged_at IS NOT NULL;
