-- Reader health told apart: what the gateway serving a reader last said of it (its retained
-- status: online, silent, offline, never_heard) and when it judged so, recorded beside the
-- heartbeat (last_heard_at) by track_engine/reader_status.py. The API's health starts from
-- this verdict while it is fresh, so that the console and the gateway agree.
ALTER TABLE readers ADD COLUMN IF NOT EXISTS gateway_status text
    CHECK (gateway_status IN ('online', 'silent', 'offline', 'never_heard'));
ALTER TABLE readers ADD COLUMN IF NOT EXISTS gateway_status_at timestamptz;
ALTER TABLE readers ADD COLUMN IF NOT EXISTS gateway_id text;

GRANT UPDATE (gateway_status, gateway_status_at, gateway_id) ON readers TO tagtrail_engine;
