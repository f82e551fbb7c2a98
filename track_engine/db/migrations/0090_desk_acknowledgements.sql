-- The duty desk's memory: stolen-frame flags are acknowledged like alerts (who, when), and the
-- desk's history (this shift, the last 24 h; unacknowledged first) is read by time.
-- Written to run twice without harm.
ALTER TABLE registration_flags ADD COLUMN IF NOT EXISTS acknowledged_by bigint REFERENCES users;
ALTER TABLE registration_flags ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz;

CREATE INDEX IF NOT EXISTS alerts_unacknowledged ON alerts (raised_at)
    WHERE acknowledged_at IS NULL;
CREATE INDEX IF NOT EXISTS registration_flags_unacknowledged ON registration_flags (raised_at)
    WHERE acknowledged_at IS NULL;

-- The API may record an acknowledgement, nothing else of a flag (it is evidence, like an alert).
REVOKE UPDATE ON registration_flags FROM tagtrail_api;
GRANT UPDATE (acknowledged_by, acknowledged_at) ON registration_flags TO tagtrail_api;
