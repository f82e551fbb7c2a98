-- Reads of readers the deployment registry does not know, held apart by the engine
-- (track_engine/unknown_readers.py): never a bike's position or last seen, kept for operators
-- to see which reader ids send (a reader not yet imported, a mistyped configuration, a rogue
-- device) and to import or fix it. A redelivered batch adds nothing (the key).
CREATE TABLE IF NOT EXISTS unknown_reader_reads (
    reader_id   text NOT NULL,
    tag_id      text NOT NULL,
    antenna     smallint NOT NULL,
    rssi_dbm    real NOT NULL,
    read_at     timestamptz NOT NULL,
    gateway_id  text NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reader_id, read_at, tag_id, antenna)
);
CREATE INDEX IF NOT EXISTS unknown_reader_reads_stored ON unknown_reader_reads (stored_at);

GRANT SELECT, INSERT ON unknown_reader_reads TO tagtrail_engine;
-- Evidence: the API reads it (operators), never writes it (default privileges gave it both).
REVOKE INSERT, UPDATE ON unknown_reader_reads FROM tagtrail_api;
