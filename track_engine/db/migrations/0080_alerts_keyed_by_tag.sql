-- Alerts keyed by tag too (issue #19), so that Citus can distribute them by tag_id, co-located
-- with reads and passages (deploy/citus/distribute.sql): Citus needs the distribution column
-- in every primary key and unique constraint. alert_id stays unique by its sequence and keeps
-- an index of its own (the API pages alerts by it and acknowledges by it). The de-duplication
-- key gains tag_id: a watch's alert per reader and read time, as before (a watch names one
-- bike; two of its tags read at the same microsecond would be two alerts).
ALTER TABLE alerts DROP CONSTRAINT alerts_pkey;
ALTER TABLE alerts ADD PRIMARY KEY (tag_id, alert_id);
ALTER TABLE alerts DROP CONSTRAINT alerts_watch_id_reader_id_read_at_key;
ALTER TABLE alerts ADD CONSTRAINT alerts_once UNIQUE (tag_id, watch_id, reader_id, read_at);
CREATE INDEX alerts_by_id ON alerts (alert_id);

-- An identity column becomes a plain sequence default: Citus 13 refuses to distribute a table
-- with an identity column and a foreign key to a reference table (alerts -> watches, users:
-- "cannot complete operation on a table with identity column"). Same numbers, continued.
ALTER TABLE alerts ALTER COLUMN alert_id DROP IDENTITY;
CREATE SEQUENCE alerts_alert_id_seq OWNED BY alerts.alert_id;
SELECT setval('alerts_alert_id_seq', coalesce(max(alert_id), 0) + 1, false) FROM alerts;
ALTER TABLE alerts ALTER COLUMN alert_id SET DEFAULT nextval('alerts_alert_id_seq');
GRANT USAGE ON SEQUENCE alerts_alert_id_seq TO tagtrail_engine;
